// kafkajs over TLS and SASL: produce COUNT records, consume them back, print a JSON summary.
// Usage: node secure.js BOOTSTRAP TOPIC COUNT SETTINGS_JSON
//   SETTINGS_JSON: {"ca": path, "cert": path, "key": path,
//                   "sasl": {"mechanism": "scram-sha-512", "username": u, "password": p}}
// A failure prints {"error": name, "message": text} and exits with status 1.
const fs = require("fs");
const { Kafka, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, topic, countText, settingsText] = process.argv.slice(2);
  const count = Number(countText);
  const settings = JSON.parse(settingsText);
  const ssl = { ca: [fs.readFileSync(settings.ca, "utf8")] };
  if (settings.cert) {
    ssl.cert = fs.readFileSync(settings.cert, "utf8");
    ssl.key = fs.readFileSync(settings.key, "utf8");
  }
  const kafka = new Kafka({
    clientId: "headwater-js-secure",
    brokers: [bootstrap],
    ssl,
    sasl: settings.sasl,
    logLevel: logLevel.NOTHING,
    retry: { retries: 1, initialRetryTime: 100 },
  });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) messages.push({ value: `record-${i}` });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `js-secure-${Date.now()}`, sessionTimeout: 6000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.length} of ${count}`)), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value.toString());
        if (seen.length === count) { clearTimeout(timer); resolve(); }
      },
    });
  });
  await consumer.disconnect();
  console.log(JSON.stringify({ values: seen }));
}

main().catch((err) => {
  console.log(JSON.stringify({ error: err.name, message: err.message }));
  process.exit(1);
});
