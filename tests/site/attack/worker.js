// A dedicated worker that tries the secret server with fetch, XHR and a WebSocket.
const tries = [
  fetch("SECRET_ORIGIN/worker-fetch", {mode: "no-cors"}).then(() => "fetched", () => "refused"),
  new Promise((resolve) => {
    const socket = new WebSocket("ws://SECRET_HOST:SECRET_PORT/worker-socket");
    socket.onopen = () => resolve("socket open");
    socket.onerror = socket.onclose = () => resolve("socket refused");
  }),
  new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("GET", "SECRET_ORIGIN/worker-xhr");
    request.onload = () => resolve("xhr loaded");
    request.onerror = () => resolve("xhr refused");
    request.send();
  }),
];
Promise.all(tries).then((outcomes) => postMessage(outcomes.join(", ")));
