// Node's built-in http server, started as a user's service does, for the
// rollout-harness corpus. PORT/HOST say where to listen, POD_NAME goes into
// X-Pod-Name. With CLOSE_ON_SIGTERM=true, SIGTERM calls server.close()
// (https://nodejs.org/api/http.html#serverclosecallback: stops accepting,
// and since v19 closes idle connections) and the process exits when the
// last connection is gone; otherwise no listener is installed and Node's
// default handler exits at once (https://nodejs.org/api/process.html#signal-events).
"use strict";
const http = require("http");
const pod = process.env.POD_NAME || "";
const workMs = Number(process.env.WORK_MS || "20");
const server = http.createServer((req, res) => {
  const answer = () => {
    res.writeHead(200, { "Content-Type": "text/plain", "X-Pod-Name": pod, "Content-Length": 3 });
    res.end("ok\n");
  };
  if (req.url.startsWith("/work") && workMs > 0) setTimeout(answer, workMs);
  else answer();
});
server.listen(Number(process.env.PORT || "8080"), process.env.HOST || "127.0.0.1");
if (process.env.CLOSE_ON_SIGTERM === "true") {
  process.on("SIGTERM", () => {
    console.log("SIGTERM: server.close()");
    server.close(() => { console.log("closed, exiting"); process.exit(0); });
  });
}
