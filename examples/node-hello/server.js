// A Node.js web server with no dependencies.
const http = require("http");
const port = Number(process.env.PORT || 8080);
http.createServer((req, res) => {
  const body = JSON.stringify({ message: "hello from node-hello", instance_index: process.env.CF_INSTANCE_INDEX }) + "\n";
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}).listen(port, "0.0.0.0", () => console.log(`node-hello listening on port ${port}`));
