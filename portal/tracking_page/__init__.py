"""The customer's tracking page (`/t/<token>`): what a recipient sees of one shipment.

`selectors` builds the page's view model (the one representation the HTML, the polling JSON
and the socket share); `privacy` decides which positions may leave the server; `views` and
`consumers` serve it. docs/TRACKING_PAGE.md describes the page and its privacy rules.
"""
