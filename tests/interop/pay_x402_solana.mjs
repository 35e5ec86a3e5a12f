// PayAI's x402-solana 2.0.4, unmodified: a @solana/web3.js Keypair as its wallet adapter. It
// reads PAYMENT-REQUIRED (v2) and builds a payment without a memo instruction.
//
//   node tests/interop/pay_x402_solana.mjs <url> <keypair.json> <rpc-url> [json-body]
import { Keypair } from "@solana/web3.js";
import { createX402Client } from "x402-solana/client";

import { keypairBytes, reportResponse, run } from "./report.mjs";

await run(async ([url, keypairPath, rpcUrl, body = "{}"]) => {
  const keypair = Keypair.fromSecretKey(await keypairBytes(keypairPath));
  // snippet:start
  const wallet = {
    address: keypair.publicKey.toBase58(),
    signTransaction: async (tx) => {
      tx.sign([keypair]);
      return tx;
    },
  };
  const client = createX402Client({ wallet, network: "solana-devnet", rpcUrl });
  const response = await client.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  // snippet:end
  await reportResponse(response, wallet.address);
});
