// The demo page: each call a browser makes to an API protected by clerk-deps, and its answer.
"use strict";

// Stands in for Clerk's `await window.Clerk.session.getToken()`: Clerk's frontend keeps the
// current session token in the __session cookie, which the page can read.
function getToken() {
  const entry = document.cookie.split("; ").find((c) => c.startsWith("__session="));
  return entry ? entry.slice("__session=".length) : null;
}

function show(step, label, outcome) {
  const item = document.createElement("li");
  item.dataset.step = step;
  item.dataset.status = String(outcome.status);
  item.dataset.reason = outcome.reason || "";
  item.className = outcome.ok ? "ok" : "refused";
  const detail = outcome.ok ? "" : ` (refused: ${outcome.reason})`;
  item.innerHTML = `<strong></strong> &rarr; <code></code>`;
  item.querySelector("strong").textContent = label;
  item.querySelector("code").textContent = `${outcome.status}${detail} ${outcome.body}`;
  document.getElementById("results").append(item);
}

async function httpOutcome(response) {
  const body = await response.json();
  const reason = body.detail ? body.detail.reason : "";
  return { status: response.status, ok: response.ok, reason, body: JSON.stringify(body) };
}

// Resolves once the server closed the socket: what arrived, and the close code and reason.
function socketOutcome(socket) {
  return new Promise((resolve) => {
    let message = "";
    socket.addEventListener("message", (event) => { message = event.data; });
    socket.addEventListener("close", (event) => {
      const ok = event.code === 1000 && message !== "";
      const protocol = socket.protocol ? ` subprotocol=${socket.protocol}` : "";
      resolve({ status: event.code, ok, reason: event.reason, body: message + protocol });
    });
  });
}

async function callEverything(config) {
  const token = getToken();
  const apiSocket = config.apiUrl.replace(/^http/, "ws");

  // --8<-- [start:same-origin]
  // Same origin: the browser sends the __session cookie by itself.
  const sameOrigin = await fetch("/me");
  // --8<-- [end:same-origin]
  show("same-origin", "GET /me, same origin, cookie", await httpOutcome(sameOrigin));

  // --8<-- [start:cross-origin]
  // Another origin: no cookie; send the token (the API allows this origin with CORS).
  const crossOrigin = await fetch(`${config.apiUrl}/me`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  // --8<-- [end:cross-origin]
  show("cross-origin", "GET /me, cross origin, Bearer", await httpOutcome(crossOrigin));

  const noToken = await fetch(`${config.apiUrl}/me`);
  show("cross-origin-no-token", "GET /me, cross origin, no token", await httpOutcome(noToken));

  // --8<-- [start:websocket-cookie]
  const cookieSocket = new WebSocket(`ws://${location.host}/ws`);  // sends the cookie
  // --8<-- [end:websocket-cookie]
  show("ws-cookie", "WebSocket /ws, same origin, cookie", await socketOutcome(cookieSocket));

  // --8<-- [start:websocket-subprotocol]
  const protocols = ["clerk", `clerk.token.${token}`];  // the server echoes "clerk"
  const tokenSocket = new WebSocket(`${apiSocket}/ws`, protocols);
  // --8<-- [end:websocket-subprotocol]
  show("ws-subprotocol", "WebSocket /ws, cross origin, token subprotocol",
    await socketOutcome(tokenSocket));

  // --8<-- [start:websocket-refused]
  const adminSocket = new WebSocket(`ws://${location.host}/ws/admin`);
  adminSocket.addEventListener("close", (event) => {
    // With CLERK_WEBSOCKET_REFUSAL=close: code 1008, reason "org-role-required"
    console.log(event.code, event.reason);
  });
  // --8<-- [end:websocket-refused]
  show("ws-refused", "WebSocket /ws/admin, not an admin", await socketOutcome(adminSocket));
}

async function main() {
  const config = await (await fetch("/config.json")).json();
  const signIn = document.getElementById("sign-in");
  const run = document.getElementById("run");
  signIn.addEventListener("click", () => {
    const back = encodeURIComponent(location.href);
    location.href = `${config.signInUrl}?user_id=${config.userId}&redirect_url=${back}`;
  });
  const token = getToken();
  if (token) {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    document.getElementById("who").textContent = `Signed in as ${claims.sub}.`;
    run.disabled = false;
  }
  run.addEventListener("click", async () => {
    run.disabled = true;
    document.getElementById("results").replaceChildren();
    await callEverything(config);
    document.body.dataset.done = "true";
    run.disabled = false;
  });
}

main();
