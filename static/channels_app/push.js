/*!
 * push.js: subscribes this browser to the site's web-push notifications.
 *
 *   <script src="https://console.example/static/channels_app/push.js"
 *           data-key="mk_…" data-host="https://console.example" data-sw="/push-sw.js" async></script>
 *   <button onclick="mkPush.subscribe()">Notify me</button>
 *
 *   data-key   the organisation's public write key (as for track.js).
 *   data-host  where the console runs; defaults to the origin this file was loaded from.
 *   data-sw    the site's copy of push-sw.js (a service worker must be same-origin); default /push-sw.js.
 *   data-consent-text  optional: the words next to the button, kept as the consent's proof.
 *
 * window.mkPush.subscribe() asks for permission (call it from a click: browsers ignore the
 * prompt otherwise), registers the worker, subscribes with the console's VAPID key
 * (GET {host}/m/push/key) and posts the subscription with the visitor's anonymous id (track.js's
 * mk_aid cookie) and "consent": true to POST {host}/m/push/subscriptions?k=…; it resolves to
 * true when subscribed. window.mkPush.unsubscribe() ends it here and at the console.
 * On every page load where permission was granted before, the current subscription is posted
 * again (no consent flag), so a renewed subscription or a visitor who signed in stays current.
 * The site's origin must be in the organisation's allowed origins. ES5 plus promises and fetch.
 */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector('script[data-key][src*="push.js"]');
  if (!script || (window.mkPush && window.mkPush.loaded)) return;
  var writeKey = script.getAttribute("data-key") || "";
  var host = (script.getAttribute("data-host") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var workerUrl = script.getAttribute("data-sw") || "/push-sw.js";
  var consentText = script.getAttribute("data-consent-text") || null;
  var supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

  function anonymousId() {
    if (window.mk && window.mk.anonymousId) return window.mk.anonymousId();
    var match = document.cookie.match(/(?:^|;\s*)mk_aid=([A-Za-z0-9-]{8,64})(?:;|$)/);
    if (match) return match[1];
    var id = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + "-" + Math.random().toString(36).slice(2);
    document.cookie = "mk_aid=" + id + "; Max-Age=63072000; Path=/; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : ""); // as track.js keeps it
    return id;
  }

  function post(path, body) {
    // text/plain keeps it a "simple" request: no CORS preflight.
    return fetch(host + path + "?k=" + encodeURIComponent(writeKey), {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "Content-Type": "text/plain" },
      credentials: "omit",
    }).then(function (response) {
      if (!response.ok) throw new Error("push: the console answered " + response.status);
      return response.json();
    });
  }

  function bytes(base64url) {
    var text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4));
    var out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  function subscription(registration) {
    return registration.pushManager.getSubscription().then(function (existing) {
      if (existing) return existing;
      return fetch(host + "/m/push/key", { credentials: "omit" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (!data.publicKey) throw new Error("push: the console has no VAPID key");
          return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(data.publicKey) });
        });
    });
  }

  function save(consent) {
    return navigator.serviceWorker.register(workerUrl)
      .then(function () { return navigator.serviceWorker.ready; })
      .then(subscription)
      .then(function (sub) {
        var body = sub.toJSON();
        body.anonymousId = anonymousId();
        if (consent) {
          body.consent = true;
          body.consentText = consentText;
        }
        return post("/m/push/subscriptions", body);
      })
      .then(function () { return true; });
  }

  function subscribe() {
    if (!supported) return Promise.resolve(false);
    return Notification.requestPermission().then(function (permission) {
      return permission === "granted" ? save(true) : false;
    });
  }

  function unsubscribe() {
    if (!supported) return Promise.resolve(false);
    return navigator.serviceWorker.getRegistration(workerUrl).then(function (registration) {
      return registration && registration.pushManager.getSubscription();
    }).then(function (sub) {
      if (!sub) return false;
      var endpoint = sub.endpoint;
      return sub.unsubscribe().then(function () { return post("/m/push/unsubscribe", { endpoint: endpoint }); })
        .then(function () { return true; });
    });
  }

  window.mkPush = { loaded: true, supported: supported, subscribe: subscribe, unsubscribe: unsubscribe };
  if (supported && Notification.permission === "granted") {
    save(false).catch(function (error) { if (window.console) console.warn(error); });
  }
})();
