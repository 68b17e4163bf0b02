/*!
 * track.js: page views, a visitor id and form stitching for sites without an SDK.
 *
 * Embed once per page (docs/tracking.md has the whole story):
 *
 *   <script src="https://console.example/static/marketing/track.js"
 *           data-key="mk_…" data-host="https://console.example" async></script>
 *
 *   data-key   the organisation's public *write* key (safe to embed: it can only add events).
 *   data-host  where the console runs; defaults to the origin this file was loaded from.
 *
 * What it does, and nothing else:
 *   - keeps a random anonymous id in the first-party cookie `mk_aid` (two years, Path=/,
 *     SameSite=Lax, Secure on https), so one browser is one visitor across visits;
 *   - on load sends a page view to POST {host}/v1/page: a Segment-compatible JSON body
 *     {writeKey, anonymousId, messageId, timestamp, properties: {url, path, title, referrer,
 *     search}, context: {page, userAgent, campaign (the utm_* parameters, when present)}} as
 *     text/plain (no CORS preflight), with
 *     navigator.sendBeacon, else fetch(…, {keepalive: true});
 *   - puts hidden `_aid` (and `_k`, when the form has no key) inputs into every
 *     <form data-mk-form>, also forms added later, so a submission joins this visitor's
 *     history to the person who filled it in;
 *   - exposes window.mk.page() (another page view, e.g. after a client-side route change),
 *     window.mk.identify(email, traits) (POST {host}/v1/identify), window.mk.anonymousId() and
 *     window.mk.consent({analytics: true, advertising: false}) (the visitor's banner choices,
 *     sent with every later call as context.consent.categoryPreferences).
 *
 * The site's origin must be in the organisation's allowed origins, else the console refuses
 * the calls (403). No dependencies and no build step: ES5 syntax, plus URL, URLSearchParams and
 * crypto, which every browser of the last several years has.
 */
(function () {
  "use strict";
  if (window.mk && window.mk.loaded) return; // embedded twice: the first copy does the work

  var script = document.currentScript || document.querySelector('script[data-key][src*="track.js"]');
  if (!script) return;
  var writeKey = script.getAttribute("data-key") || "";
  var host = (script.getAttribute("data-host") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var COOKIE = "mk_aid";
  var TWO_YEARS = 2 * 365 * 24 * 60 * 60; // seconds

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    var hex = Array.prototype.map
      .call(bytes, function (b) {
        return (b + 0x100).toString(16).slice(1);
      })
      .join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  function visitorId() {
    var match = document.cookie.match(/(?:^|;\s*)mk_aid=([A-Za-z0-9-]{8,64})(?:;|$)/);
    var id = match ? match[1] : uuid();
    // Written on every page view, so the two years count from the last visit.
    document.cookie =
      COOKIE + "=" + id + "; Max-Age=" + TWO_YEARS + "; Path=/; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
    return id;
  }

  var anonymousId = visitorId();

  function send(path, fields) {
    var body = { writeKey: writeKey, anonymousId: anonymousId, messageId: uuid(), timestamp: new Date().toISOString() };
    for (var name in fields) body[name] = fields[name];
    var url = host + path;
    var payload = JSON.stringify(body);
    try {
      // A string body goes as text/plain: a "simple" request, so no preflight, and it survives unload.
      if (navigator.sendBeacon && navigator.sendBeacon(url, payload)) return;
    } catch (e) {
      // fall through to fetch
    }
    if (window.fetch) {
      fetch(url, {
        method: "POST",
        body: payload,
        headers: { "Content-Type": "text/plain" },
        keepalive: true,
        credentials: "omit",
      }).catch(function () {});
    }
  }

  var UTM = { utm_source: "source", utm_medium: "medium", utm_campaign: "name", utm_term: "term", utm_content: "content" };

  // The visitor's choices from the site's consent banner (mk.consent), sent with every call as
  // Segment's context.consent.categoryPreferences: the console stores tracking only as the
  // organisation's regime and these choices allow (docs/consent.md).
  var preferences = null;

  function consent(choices) {
    preferences = {};
    for (var name in choices || {}) preferences[name] = !!choices[name];
  }

  function context(page) {
    var result = { page: page, userAgent: navigator.userAgent };
    if (preferences) result.consent = { categoryPreferences: preferences };
    // As analytics.js does: the page's utm_* parameters as context.campaign, which /v1/page keeps.
    var params = new URLSearchParams(location.search);
    for (var name in UTM) {
      if (params.get(name)) {
        result.campaign = result.campaign || {};
        result.campaign[UTM[name]] = params.get(name);
      }
    }
    return result;
  }

  function page() {
    var properties = {
      url: location.href,
      path: location.pathname,
      title: document.title,
      referrer: document.referrer,
      search: location.search,
    };
    send("/v1/page", { properties: properties, context: context(properties) });
  }

  function identify(email, traits) {
    var all = {};
    for (var name in traits || {}) all[name] = traits[name];
    if (email) all.email = email;
    send("/v1/identify", {
      traits: all,
      context: context({ url: location.href, path: location.pathname, title: document.title }),
    });
  }

  function hidden(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }

  function stitch(form) {
    hidden(form, "_aid", anonymousId);
    var action = form.getAttribute("action") || "";
    if (writeKey && !form.querySelector('input[name="_k"]') && !/[?&]k=/.test(action)) hidden(form, "_k", writeKey);
  }

  function stitchAll() {
    var forms = document.querySelectorAll("form[data-mk-form]");
    for (var i = 0; i < forms.length; i++) stitch(forms[i]);
  }

  // Forms rendered after load (single-page apps) are stitched as they are submitted.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (form && form.matches && form.matches("form[data-mk-form]")) stitch(form);
    },
    true
  );

  window.mk = {
    loaded: true,
    page: page,
    identify: identify,
    consent: consent,
    anonymousId: function () {
      return anonymousId;
    },
  };

  function start() {
    stitchAll();
    page();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
