/*!
 * push-sw.js: the service worker that shows this site's web-push notifications.
 *
 * A service worker must come from the site's own origin, so copy this file to the site (e.g.
 * https://www.acme.io/push-sw.js; its path decides the pages it serves) and point push.js at
 * it with data-sw="/push-sw.js". docs/channels.md ("Web push") has the whole story.
 *
 * The console sends each notification as encrypted JSON, which the browser decrypts:
 *   {"title": "…", "body": "…", "url": "https://…", "tag": "…"}
 * - push: shows it. The tag is a hash of the message's idempotency key, so a message the
 *   console had to send again replaces the copy already shown instead of stacking a second.
 * - notificationclick: closes it and focuses a tab already on the url, else opens one.
 * No dependencies, ES5 syntax plus promises (every browser with push has them).
 */
"use strict";

self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = { body: event.data ? event.data.text() : "" }; // not JSON: show the text as it came
  }
  var options = { body: data.body || "", data: { url: data.url || "" } };
  if (data.tag) options.tag = data.tag;
  // Browsers require a visible notification for every push (userVisibleOnly), so always show one.
  event.waitUntil(self.registration.showNotification(data.title || "", options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "";
  if (!/^https?:\/\//i.test(url)) return; // only web pages: never javascript: or data: URLs
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (tabs) {
      for (var i = 0; i < tabs.length; i++) {
        if (tabs[i].url === url && "focus" in tabs[i]) return tabs[i].focus();
      }
      return self.clients.openWindow ? self.clients.openWindow(url) : undefined;
    })
  );
});
