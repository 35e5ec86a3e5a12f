// Shared by the interop scripts: the wallet from a Solana keypair file and the one JSON line
// each script prints for tests/it/interop.rs.

import { readFile } from "node:fs/promises";

/** The 64 secret-key bytes of a solana-keygen JSON file. */
export async function keypairBytes(path) {
  return Uint8Array.from(JSON.parse(await readFile(path, "utf8")));
}

/** Decodes a base64 JSON receipt header (PAYMENT-RESPONSE or X-PAYMENT-RESPONSE). */
export function decodeReceipt(value) {
  return value ? JSON.parse(Buffer.from(value, "base64").toString("utf8")) : null;
}

/** Prints { status, body, paymentResponse, payer } on one line. */
export function report({ status, body, receipt, payer }) {
  console.log(JSON.stringify({ status, body, paymentResponse: decodeReceipt(receipt), payer }));
}

/** Reports a fetch `Response`: its JSON body and its receipt (v2 or v1 header). */
export async function reportResponse(response, payer) {
  report({
    status: response.status,
    body: await response.json(),
    receipt: response.headers.get("payment-response") ?? response.headers.get("x-payment-response"),
    payer,
  });
}

/** Runs `main`, printing a failure on stderr with exit 1. */
export async function run(main) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    console.error(`interop client failed: ${error?.stack ?? error}`);
    process.exit(1);
  }
}
