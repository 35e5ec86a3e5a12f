// The official x402 reference server selling the same call as the gateway in
// bench/challenge.sh and bench/paid.sh: the gateway's price (PRICE; 1000 atomic units when
// unset), network (Solana devnet), asset, payTo and fee payer (both read `/supported` from
// the gateway's in-process facilitator), and a Bazaar discovery extension, so a 402 challenge
// carries the same information. FRAMEWORK picks the official middleware: `hono` (@x402/hono
// on @hono/node-server, the default) or `express` (@x402/express on Express 5); both wrap the
// same x402ResourceServer from @x402/core.
//
//   PORT=9904 FACILITATOR_URL=http://127.0.0.1:9903/api/internal/facilitator \
//   FACILITATOR_SECRET=... PAY_TO=<address> MINT=<address> [FRAMEWORK=express] \
//   node bench/reference/server.mjs
//
// With FEE_PAYER_KEYPAIR (a solana-keygen JSON file) and SOLANA_RPC instead of FACILITATOR_URL
// (bench/paid.sh), the facilitator is the official one, in process: `x402Facilitator` from
// @x402/core with the `exact` SVM scheme of @x402/svm (`registerExactSvmScheme`, verify by
// simulation, settle by sendTransaction and getSignatureStatuses polling) signing as that fee
// payer against that cluster, the way the x402 examples wire a self-hosted facilitator.

import { HTTPFacilitatorClient, x402ResourceServer } from "@x402/core/server";
import { bazaarResourceServerExtension, declareDiscoveryExtension } from "@x402/extensions/bazaar";
import { ExactSvmScheme } from "@x402/svm/exact/server";

const SOLANA_DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`reference server: ${name} is required`);
    process.exit(2);
  }
  return value;
};
const port = Number(process.env.PORT ?? 9904);
let facilitator;
if (process.env.FEE_PAYER_KEYPAIR) {
  const { readFileSync } = await import("node:fs");
  const { createKeyPairSignerFromBytes } = await import("@solana/kit");
  const { x402Facilitator } = await import("@x402/core/facilitator");
  const { registerExactSvmScheme } = await import("@x402/svm/exact/facilitator");
  const { toFacilitatorSvmSigner } = await import("@x402/svm");
  const bytes = Uint8Array.from(JSON.parse(readFileSync(process.env.FEE_PAYER_KEYPAIR, "utf8")));
  const signer = toFacilitatorSvmSigner(await createKeyPairSignerFromBytes(bytes), {
    defaultRpcUrl: need("SOLANA_RPC"),
  });
  facilitator = registerExactSvmScheme(new x402Facilitator(), { signer, networks: SOLANA_DEVNET });
} else {
  const secret = need("FACILITATOR_SECRET");
  const auth = { "x-facilitator-secret": secret };
  facilitator = new HTTPFacilitatorClient({
    url: need("FACILITATOR_URL"),
    createAuthHeaders: async () => ({ supported: auth, verify: auth, settle: auth }),
  });
}
const server = new x402ResourceServer(facilitator)
  .register(SOLANA_DEVNET, new ExactSvmScheme())
  .registerExtension(bazaarResourceServerExtension);

const answer = { jsonrpc: "2.0", id: 1, result: { context: { slot: 1 }, value: 1000000000 } };
const routes = {
  "POST /v1/x402/solana/devnet/bench/rpc/getBalance": {
    accepts: {
      scheme: "exact",
      network: SOLANA_DEVNET,
      payTo: need("PAY_TO"),
      price: { amount: process.env.PRICE ?? "1000", asset: need("MINT") },
      maxTimeoutSeconds: 60,
    },
    description: "Solana JSON-RPC call, paid per request",
    mimeType: "application/json",
    extensions: {
      ...declareDiscoveryExtension({
        method: "POST",
        bodyType: "json",
        input: { params: ["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"] },
        inputSchema: { properties: { params: { type: "array" } } },
        output: { example: answer },
      }),
    },
  },
};

const route = "/v1/x402/solana/devnet/bench/rpc/getBalance";
const listening = (port) => console.error(`reference server (${framework}) listening on 127.0.0.1:${port}`);
const framework = process.env.FRAMEWORK ?? "hono";
if (framework === "hono") {
  const { serve } = await import("@hono/node-server");
  const { Hono } = await import("hono");
  const { paymentMiddleware } = await import("@x402/hono");
  const app = new Hono();
  app.use(paymentMiddleware(routes, server));
  app.post(route, (c) => c.json(answer));
  serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, (info) => listening(info.port));
} else if (framework === "express") {
  const { default: express } = await import("express");
  const { paymentMiddleware } = await import("@x402/express");
  const app = express();
  app.use(paymentMiddleware(routes, server));
  app.post(route, (_req, res) => res.json(answer));
  app.listen(port, "127.0.0.1", () => listening(port));
} else {
  console.error(`reference server: FRAMEWORK must be hono or express, not ${framework}`);
  process.exit(2);
}
