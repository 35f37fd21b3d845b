// Shared by the attack pages: attack(name, start) runs start() (which returns a promise, or
// nothing), then records the outcome in document.title as "<name>: <outcome>". The page's
// load event is held (by a pending iframe on /hold) until the attempt has settled, so the
// screenshot is taken after the attempt reached the network.
function attack(name, start) {
  const hold = document.createElement("iframe");
  hold.src = "/hold?ms=4000";
  hold.style.display = "none";
  document.body.appendChild(hold);
  const done = (outcome) => {
    document.title = name + ": " + outcome;
    hold.remove();
  };
  let result;
  try {
    result = start();
  } catch (error) {
    done("threw " + error.name);
    return;
  }
  Promise.resolve(result).then(
    (value) => done("resolved " + (value && value.status !== undefined ? value.status : "")),
    (error) => done("rejected " + (error && error.name))
  );
}

// A promise settled by a WebSocket's first open/error/close event.
function socketOutcome(socket) {
  return new Promise((resolve, reject) => {
    socket.onopen = () => resolve({status: "open"});
    socket.onerror = () => reject(new Error("error"));
    socket.onclose = () => reject(new Error("closed"));
  });
}
