// Produce keyed records with kafkajs (idempotent), consume them in a group, print a JSON summary.
const { Kafka, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, topic, countText] = process.argv.slice(2);
  const count = Number(countText);
  const kafka = new Kafka({ clientId: "headwater-js", brokers: [bootstrap], logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) messages.push({ key: `k${i % 5}`, value: String(i) });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `js-${Date.now()}`, sessionTimeout: 6000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  const started = Date.now();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.length} of ${count}`)), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(Number(message.value.toString()));
        if (seen.length === count) { clearTimeout(timer); resolve(); }
      },
    });
  });
  const elapsedMs = Date.now() - started;
  await consumer.disconnect();
  console.log(JSON.stringify({ consumed: seen.length, distinct: new Set(seen).size, elapsedMs }));
}

main().catch((err) => { console.error(err); process.exit(1); });
