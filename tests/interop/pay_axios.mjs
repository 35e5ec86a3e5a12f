// The official axios client, unmodified: @x402/axios 2.11 with the @x402/svm 2.27 scheme.
//
//   node tests/interop/pay_axios.mjs <url> <keypair.json> <rpc-url> [json-body]
import { createKeyPairSignerFromBytes } from "@solana/kit";
import axios from "axios";
import { wrapAxiosWithPayment } from "@x402/axios";
import { x402Client } from "@x402/core/client";
import { ExactSvmScheme } from "@x402/svm/exact/client";

import { keypairBytes, report, run } from "./report.mjs";

await run(async ([url, keypairPath, rpcUrl, body = "{}"]) => {
  const signer = await createKeyPairSignerFromBytes(await keypairBytes(keypairPath));
  // snippet:start
  const client = new x402Client().register("solana:*", new ExactSvmScheme(signer, { rpcUrl }));
  const api = wrapAxiosWithPayment(axios.create(), client);
  const response = await api.post(url, JSON.parse(body));
  // snippet:end
  report({
    status: response.status,
    body: response.data,
    receipt: response.headers["payment-response"],
    payer: signer.address,
  });
});
