// The legacy v1 client, unmodified: x402-fetch 1.2.0 + x402 1.2.0. It reads the 402 *body*
// (x402Version 1) and pays with X-PAYMENT; the receipt comes back in X-PAYMENT-RESPONSE.
//
//   node tests/interop/pay_v1.mjs <url> <keypair.json> <rpc-url> [json-body]
import { getBase58Decoder } from "@solana/kit";
import { createSigner, wrapFetchWithPayment } from "x402-fetch";

import { keypairBytes, reportResponse, run } from "./report.mjs";

await run(async ([url, keypairPath, rpcUrl, body = "{}"]) => {
  const secret = getBase58Decoder().decode(await keypairBytes(keypairPath));
  // snippet:start
  const signer = await createSigner("solana-devnet", secret); // base58 64-byte secret key
  const pay = wrapFetchWithPayment(fetch, signer, undefined, undefined, {
    svmConfig: { rpcUrl }, // the cluster the gateway sells for (default: public devnet)
  });
  const response = await pay(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  // snippet:end
  await reportResponse(response, signer.address);
});
