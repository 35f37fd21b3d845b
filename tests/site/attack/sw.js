// A service worker that tries the secret server while it installs and when it activates.
self.addEventListener("install", (event) => {
  event.waitUntil(fetch("SECRET_ORIGIN/sw-install", {mode: "no-cors"}).catch(() => null));
  self.skipWaiting();
});
self.addEventListener("activate", (event) => {
  event.waitUntil(
    Promise.all([
      self.clients.claim(),
      fetch("SECRET_ORIGIN/sw-activate", {mode: "no-cors"}).catch(() => null),
    ])
  );
});
