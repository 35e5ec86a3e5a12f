// A @solana/web3.js 1.x Connection whose HTTP goes through the official paying fetch: every
// JSON-RPC call (single or batch) against the gateway's standard route is paid on its 402.
//
//   node tests/interop/web3_connection.mjs <rpc-route-url> <keypair.json> <rpc-url> <address>
import { createKeyPairSignerFromBytes } from "@solana/kit";
import { Connection, PublicKey } from "@solana/web3.js";
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";

import { keypairBytes, run } from "./report.mjs";

await run(async ([gatewayRpcUrl, keypairPath, rpcUrl, address]) => {
  const signer = await createKeyPairSignerFromBytes(await keypairBytes(keypairPath));
  const receipts = [];
  const recording = async (input, init) => {
    const response = await fetch(input, init);
    const receipt = response.headers.get("payment-response");
    if (receipt) receipts.push(JSON.parse(Buffer.from(receipt, "base64").toString("utf8")));
    return response;
  };
  // snippet:start
  const client = new x402Client().register("solana:*", new ExactSvmScheme(signer, { rpcUrl }));
  const connection = new Connection(gatewayRpcUrl, {
    commitment: "confirmed",
    fetch: wrapFetchWithPayment(recording, client),
  });
  const lamports = await connection.getBalance(new PublicKey(address));
  // snippet:end
  // A batch: one paid HTTP request carrying two calls.
  const batch = await connection._rpcBatchRequest([
    { methodName: "getBalance", args: [address] },
    { methodName: "getSlot", args: [] },
  ]);
  console.log(
    JSON.stringify({
      lamports,
      batchLamports: batch[0]?.result?.value,
      batchSlot: batch[1]?.result,
      receipts,
      payer: signer.address,
    }),
  );
});
