// A service worker that would answer every request of its scope if it survived.
self.addEventListener("fetch", (event) => {
  event.respondWith(new Response("<title>from the service worker</title>", {
    headers: { "Content-Type": "text/html" },
  }));
});
