// kafkajs over TLS and SASL, for tests/test_security_clients.py.
// Reads scenarios from stdin, one JSON object a line, plays each in turn and answers each with
// one JSON line on stdout, so one node process serves every scenario (and the test can change
// the broker, granting an ACL say, between two of them).
//   scenario: {"scenario": name, "bootstrap": "host:port", "topic": t, "count": n,
//              "produce_only": bool, "ca": path, "cert": path, "key": path,
//              "sasl": {"mechanism": "scram-sha-512", "username": u, "password": p}}
// It produces COUNT records (acks=-1) and, unless produce_only, consumes them back in a group.
// The answer: {"scenario": name, "values": [...]}, or {"scenario": name, "error": class,
// "type": Kafka error type, "message": text, "causes": [{"name", "type", "code", "message"}]}
// with the chain of errors the client wrapped.
const fs = require("fs");
const readline = require("readline");
const { Kafka, logLevel } = require("kafkajs");

async function play(s) {
  const ssl = { ca: [fs.readFileSync(s.ca, "utf8")] };
  if (s.cert) {
    ssl.cert = fs.readFileSync(s.cert, "utf8");
    ssl.key = fs.readFileSync(s.key, "utf8");
  }
  const kafka = new Kafka({
    clientId: "headwater-js-secure",
    brokers: [s.bootstrap],
    ssl,
    sasl: s.sasl,
    logLevel: logLevel.NOTHING,
    retry: { retries: 1, initialRetryTime: 100 },
  });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < s.count; i++) messages.push({ value: `record-${i}` });
  try {
    await producer.send({ topic: s.topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
  if (s.produce_only) return messages.map((m) => m.value);

  const consumer = kafka.consumer({ groupId: `js-secure-${Date.now()}`, sessionTimeout: 6000 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: s.topic, fromBeginning: true });
    const seen = [];
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${seen.length} of ${s.count}`)), 60000);
      consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.value.toString());
          if (seen.length === s.count) { clearTimeout(timer); resolve(); }
        },
      });
    });
    return seen;
  } finally {
    await consumer.disconnect();
  }
}

function describe(err) {
  const causes = [];
  const pending = [err];
  while (pending.length && causes.length < 20) {
    const e = pending.shift();
    if (!e) continue;
    causes.push({ name: e.name, type: e.type, code: e.code, message: String(e.message) });
    pending.push(e.originalError, e.cause);
    if (Array.isArray(e.errors)) pending.push(...e.errors);
  }
  return { error: err.name, type: err.type, message: String(err.message), causes };
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const s = JSON.parse(line);
    let answer;
    try {
      answer = { scenario: s.scenario, values: await play(s) };
    } catch (err) {
      answer = { scenario: s.scenario, ...describe(err) };
    }
    console.log(JSON.stringify(answer));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
