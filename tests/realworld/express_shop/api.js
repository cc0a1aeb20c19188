// The `api` service (Express, pg, fetch).
//
// GET /orders/:id/summary reads the order's lines, then each line's product with its own query
// (the N+1), then asks `inventory` for stock, shipping and loyalty, awaiting each in turn though
// each needs only the order id (the sequential work).
//
// GET /regions/totals sums the sales of six regions at once (Promise.all) through the pool,
// which holds two connections: the other queries queue for a connection (pg-pool records each
// wait as its `pg-pool.connect` span), and at most two run at a time (the pool limit).
//
// GET /reports/:year sums the year's sales from its table, sales_YEAR. The tables go up to
// 2024: nobody created the later ones, so a report for 2025 or later fails (relation does not
// exist, a 500): a failure caused by a path segment.
const express = require("express");
const { Pool } = require("pg");
const { record, serve, timed } = require("./measure");

const INVENTORY = process.env.INVENTORY_URL;
// Idle connections are kept (pg-pool closes them after 10 s by default): on a slow machine a
// report asked more than 10 s after the last query waited for a new connection, a true pool
// wait but not the planted one, so whether it showed depended on the machine's speed.
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2, idleTimeoutMillis: 0 });
const REGIONS = ["north", "south", "east", "west", "centre", "islands"];
const app = express();

app.get("/orders/:id/summary", async (req, res) => {
  const client = await pool.connect();
  const products = [];
  const loads = [];
  try {
    const lines = await client.query("SELECT product_id FROM order_lines WHERE order_id = $1 ORDER BY id", [
      req.params.id,
    ]);
    for (const line of lines.rows) {
      const [product, nanos] = await timed(() =>
        // pg_sleep stands for the few milliseconds a product read takes on a real catalogue.
        client.query("SELECT name, price_cents, pg_sleep(0.006) FROM products WHERE id = $1", [line.product_id]),
      );
      products.push(product.rows[0]);
      loads.push(nanos);
    }
  } finally {
    client.release();
  }
  const reads = [];
  const answers = {};
  for (const what of ["stock", "shipping", "loyalty"]) {
    const [body, nanos] = await timed(async () => {
      const response = await fetch(`${INVENTORY}/${what}?order=${req.params.id}`);
      return response.json();
    });
    answers[what] = body;
    reads.push(nanos);
  }
  record({ problem: "n_plus_one", durations: loads });
  record({ problem: "sequential", durations: reads });
  res.json({ products, ...answers });
});

app.get("/regions/totals", async (req, res) => {
  const timings = await Promise.all(
    REGIONS.map(async (region) => {
      const asked = process.hrtime.bigint();
      const client = await pool.connect();
      const begin = process.hrtime.bigint();
      try {
        // pg_sleep stands for the time a region's sum takes on a real sales table.
        await client.query("SELECT count(*), pg_sleep(0.02) FROM products WHERE name LIKE $1", [`%${region}%`]);
      } finally {
        client.release();
      }
      return { wait: Number(begin - asked), begin, end: process.hrtime.bigint() };
    }),
  );
  const first = timings.reduce((a, t) => (t.begin < a ? t.begin : a), timings[0].begin);
  const last = timings.reduce((a, t) => (t.end > a ? t.end : a), timings[0].end);
  record({
    problem: "pool",
    wait: timings.reduce((sum, t) => sum + t.wait, 0),
    phase: Number(last - first),
    longest: Math.max(...timings.map((t) => Number(t.end - t.begin))),
  });
  res.json({ regions: REGIONS.length });
});

app.get("/reports/:year", async (req, res) => {
  const year = Number(req.params.year);
  const sales = await pool.query(`SELECT sum(total_cents) AS total FROM sales_${year}`);
  res.json({ year, total: Number(sales.rows[0].total) });
});

serve(app, () => pool.end());
