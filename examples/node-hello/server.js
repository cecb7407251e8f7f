// A tiny HTTP service: `/` answers with the version, `/health` with 200 when healthy.
const http = require("http");

const VERSION = "v1";
const HEALTHY = true;
const port = Number(process.env.PORT || 3000);

const server = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(HEALTHY ? 200 : 500, { "content-type": "text/plain" });
    res.end(HEALTHY ? "ok\n" : "unhealthy\n");
    return;
  }
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(`hello from node-hello ${VERSION}\n`);
});

server.keepAliveTimeout = 65000;
server.listen(port, () => console.log(`node-hello ${VERSION} listening on ${port}`));

// On SIGTERM: stop accepting, finish in-flight requests, close idle
// keep-alive connections (the proxy's), then exit.
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
