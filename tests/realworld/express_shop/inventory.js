// The `inventory` service (Express): stock, shipping and loyalty reads for an order, each
// taking a fixed time.
const express = require("express");
const { serve } = require("./measure");

const app = express();
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

for (const [path, ms] of [["/stock", 30], ["/shipping", 40], ["/loyalty", 25]]) {
  app.get(path, async (req, res) => {
    await pause(ms);
    res.json({ order: req.query.order, ok: true });
  });
}

serve(app);
