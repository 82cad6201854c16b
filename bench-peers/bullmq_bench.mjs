// BullMQ for `taskrail bench --peers`: node bullmq_bench.mjs worker CONCURRENCY | enqueue-one N |
// enqueue-bulk N | fill KIND N | paced RATE N. Like the Python peers, each worker process counts the
// jobs it ran and the jobs that failed and adds them to bench:done and bench:failed every 10 ms.
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const url = process.env.REDIS_URL;
const QUEUE = "bench";
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const names = { noop: "bench.noop", io: "bench.sleep_io", latency: "bench.record_start", fail: "bench.fail" };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => (performance.timeOrigin + performance.now()) / 1000; // seconds, sub-millisecond like time.time()

async function worker(concurrency) {
  const recorder = new IORedis(url);
  const processors = {
    [names.noop]: async () => {},
    [names.io]: async () => sleep(20),
    [names.fail]: async () => {
      throw new Error("bench: a job that fails on purpose");
    },
    [names.latency]: async (job) => {
      await recorder.rpush("bench:latency", now() - job.data.enqueued_at);
    },
  };
  const counts = { done: 0, failed: 0 };
  const w = new Worker(QUEUE, async (job) => processors[job.name](job), { connection, concurrency });
  w.on("completed", () => counts.done++);
  w.on("failed", () => counts.failed++);
  setInterval(async () => {
    const { done, failed } = counts;
    counts.done = 0;
    counts.failed = 0;
    if (failed) await recorder.incrby("bench:failed", failed);
    if (done) await recorder.incrby("bench:done", done);
  }, 10);
  await w.waitUntilReady();
  await recorder.sadd("bench:ready", String(process.pid));
  process.on("SIGTERM", async () => {
    await w.close();
    process.exit(0);
  });
}

function data(kind) {
  return kind === "latency" ? { enqueued_at: now() } : {};
}

async function produce(command, args) {
  const queue = new Queue(QUEUE, { connection });
  let result = {};
  if (command === "enqueue-one" || command === "enqueue-bulk") {
    const n = Number(args[0]);
    if (command === "enqueue-one") {
      // untimed, as scripts/bench/workloads.py's WARM_UP_CALLS: a running producer's rate, not its first call's
      for (let i = 0; i < Math.min(100, n); i++) await queue.add(names.noop, {});
    }
    const start = performance.now();
    if (command === "enqueue-one") {
      for (let i = 0; i < n; i++) await queue.add(names.noop, {});
    } else {
      await queue.addBulk(Array.from({ length: n }, () => ({ name: names.noop, data: {} })));
    }
    result = { rate: n / ((performance.now() - start) / 1000) };
  } else if (command === "fill") {
    const [kind, n] = [args[0], Number(args[1])];
    for (let i = 0; i < n; i += 10000) {
      const size = Math.min(10000, n - i);
      await queue.addBulk(Array.from({ length: size }, () => ({ name: names[kind], data: data(kind) })));
    }
  } else if (command === "paced") {
    const [rate, n] = [Number(args[0]), Number(args[1])];
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const ahead = start + (i * 1000) / rate - performance.now();
      if (ahead > 0) await sleep(ahead);
      await queue.add(names.latency, data("latency"));
    }
  } else {
    throw new Error(`unknown command ${command}`);
  }
  console.log(JSON.stringify(result));
  await queue.close();
  await connection.quit();
}

const [command, ...args] = process.argv.slice(2);
if (command === "worker") {
  await worker(Number(args[0]));
} else {
  await produce(command, args);
}
