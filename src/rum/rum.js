/* Switchyard real user measurements: times each endpoint from this browser
   and sends the result. Embed:
   <script async src="https://rum.example.com/rum.js" data-key="KEY"></script>
   Runs once, after the page's load event, in idle time; a few requests;
   never throws; nothing stored in the browser. */
(function () {
  "use strict";
  try {
    var me = document.currentScript;
    if (!me || !window.fetch || !window.Promise) return;
    var key = me.getAttribute("data-key") || "";
    var base = new URL(me.src, location.href);
    var origin = base.origin;
    var MAX = 8;        // endpoints measured at most
    var WAIT = 5000;    // longest wait for one request, ms

    var later = function (f) {
      if (window.requestIdleCallback) requestIdleCallback(f, { timeout: 10000 });
      else setTimeout(f, 1000);
    };
    var bounded = function (url, opts) {
      var ctl = window.AbortController ? new AbortController() : null;
      var timer = ctl ? setTimeout(function () { ctl.abort(); }, WAIT) : 0;
      if (ctl) opts.signal = ctl.signal;
      // Resolves with the body's text (empty when opaque), once whole.
      return fetch(url, opts).then(function (r) {
        return (opts.mode === "no-cors" ? Promise.resolve("") : r.text()).then(function (t) {
          clearTimeout(timer);
          return { ok: r.ok, text: t };
        });
      }, function (e) { clearTimeout(timer); throw e; });
    };
    var fresh = function (url, tag) {
      return url + (url.indexOf("?") < 0 ? "?" : "&") + "rum=" + tag;
    };
    // One endpoint's round trip: Resource Timing from the request to the
    // first byte when the endpoint allows it (Timing-Allow-Origin), else
    // the whole fetch.
    var measure = function (e, tag) {
      var url = fresh(e.url, tag);
      var t0 = performance.now();
      var opts = { cache: "no-store", credentials: "omit", mode: "cors", redirect: "follow" };
      return bounded(url, opts).catch(function () {
        opts = { cache: "no-store", credentials: "omit", mode: "no-cors" };
        return bounded(url, opts);
      }).then(function () {
        var t1 = performance.now();
        var ms = t1 - t0, how = "fetch";
        var list = performance.getEntriesByName ? performance.getEntriesByName(new URL(url, location.href).href) : [];
        var r = list[list.length - 1];
        if (r && r.responseStart > 0 && r.requestStart > 0 && r.responseStart >= r.requestStart) {
          ms = r.responseStart - r.requestStart;
          how = "resource";
        }
        if (!(ms > 0)) ms = 0.1;
        return { endpoint: e.endpoint, ms: Math.round(ms * 10) / 10, timing: how };
      }, function () { return null; });
    };
    var send = function (body) {
      var url = origin + "/rum/beacon";
      var text = JSON.stringify(body);
      try {
        if (navigator.sendBeacon && navigator.sendBeacon(url, text)) return;
      } catch (e) { /* fall through */ }
      fetch(url, { method: "POST", body: text, keepalive: true, mode: "no-cors", credentials: "omit" }).catch(function () {});
    };
    var run = function () {
      bounded(origin + "/rum/config?key=" + encodeURIComponent(key), { cache: "no-store", credentials: "omit" })
        .then(function (r) { return r.ok ? JSON.parse(r.text) : null; })
        .then(function (c) {
          if (!c || !c.token || !c.endpoints) return;
          var tag = c.token.slice(4, 12) + Math.random().toString(36).slice(2, 8);
          // The per-beacon name: the visitor's resolver asks Switchyard
          // for it, which ties that resolver to this network.
          var port = base.port ? ":" + base.port : "";
          var lookup = bounded(base.protocol + "//" + c.token + "." + c.zone + port + "/rum/ping",
            { cache: "no-store", credentials: "omit", mode: "no-cors" }).catch(function () {});
          var list = c.endpoints.slice(0, MAX), results = [];
          var next = function (i) {
            if (i >= list.length) return Promise.resolve();
            return measure(list[i], tag).then(function (m) {
              if (m) results.push(m);
              return next(i + 1);
            });
          };
          return next(0).then(function () { return lookup; }).then(function () {
            if (results.length) send({ key: key, token: c.token, results: results });
          });
        })
        .catch(function () {});
    };
    var start = function () { later(function () { try { run(); } catch (e) { /* never */ } }); };
    if (document.readyState === "complete") start();
    else window.addEventListener("load", start, { once: true });
  } catch (e) { /* a measurement is never worth an error on the page */ }
})();
