// Sends CloudEvents with the npm `cloudevents` SDK, which this project did not write (it sends chunked
// bodies without Content-Length). Reads {"url", "mode": "binary"|"structured", "events": [...]} as JSON
// on stdin; each event is {id, type, source, datacontenttype?, data? | data_base64?}. Prints one JSON
// line per event with the response headers and body, so the test can check the reply event.
"use strict";
const { CloudEvent, Mode, emitterFor, httpTransport } = require("cloudevents");

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const spec = JSON.parse(input);
  const mode = spec.mode === "structured" ? Mode.STRUCTURED : Mode.BINARY;
  const emit = emitterFor(httpTransport(spec.url), { mode });
  for (const e of spec.events) {
    const attributes = { id: e.id, type: e.type, source: e.source };
    if (e.datacontenttype) attributes.datacontenttype = e.datacontenttype;
    if (e.data_base64 !== undefined) attributes.data = Buffer.from(e.data_base64, "base64");
    else if (e.data !== undefined) attributes.data = e.data;
    const response = await emit(new CloudEvent(attributes));
    process.stdout.write(JSON.stringify({ id: e.id, headers: response.headers, body: response.body }) + "\n");
  }
}

main().catch((err) => {
  process.stderr.write(`send.js: ${err.stack || err}\n`);
  process.exit(1);
});
