/* The console's deep link: /console/?stop=<id> opens that stop's details on load (the
 * drill-downs of /reports/ link here). Loaded after console.js; the stop API answers 404 for a
 * stop the person may not see, and the details pane shows that message. */
(function () {
  "use strict";

  const ct = window.ctConsole;
  const stop = new URLSearchParams(window.location.search).get("stop");
  if (!ct || !stop || !/^\d+$/.test(stop)) return;
  ct.openStop(Number(stop));
})();
