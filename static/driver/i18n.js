/* The driver app's shared namespace (docs/DRIVER_APP.md): its configuration and its words,
   both rendered into the page by the server as JSON (driver_app/pages.py). Plain scripts, no
   build step; each file adds one part to window.CTD. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("driver-config").textContent);
  const catalog = JSON.parse(document.getElementById("driver-catalog").textContent);

  const plurals = new Intl.PluralRules(config.language);

  /** The catalog's words for `key`, with `%(name)s` filled from `values`. A counted phrase
      (`{one, other, count}`) takes the form the language's plural rules give its count. */
  function t(key, values) {
    let text = catalog[key] || key;
    if (typeof text === "object") {
      const n = Number(values ? values[text.count] : 0);
      text = plurals.select(n) === "one" ? text.one : text.other;
    }
    return text.replace(/%\((\w+)\)s/g, function (_match, name) {
      const value = values ? values[name] : undefined;
      return value === undefined || value === null ? "" : String(value);
    });
  }

  /** "14:05" in the organization's time zone (the phone's own when not known yet). */
  function time(iso, timeZone) {
    if (!iso) return "";
    const options = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (timeZone) options.timeZone = timeZone;
    try {
      return new Intl.DateTimeFormat(config.language, options).format(new Date(iso));
    } catch (_error) {  // an unknown zone name: the phone's clock is better than nothing
      delete options.timeZone;
      return new Intl.DateTimeFormat(config.language, options).format(new Date(iso));
    }
  }

  window.CTD = { config: config, t: t, time: time };
})();
