// A plain @solana/web3.js 1.x Connection, nothing x402 about it, pointed at `x402-pay proxy`:
// the proxy pays the gateway behind its back. A single call, a batch and a refused call.
//
//   node tests/interop/web3_through_proxy.mjs <proxy-url> <address>
import { Connection, PublicKey } from "@solana/web3.js";

import { run } from "./report.mjs";

await run(async ([proxyUrl, address]) => {
  const connection = new Connection(proxyUrl, "confirmed");
  const lamports = await connection.getBalance(new PublicKey(address));
  const slot = await connection.getSlot();
  const batch = await connection._rpcBatchRequest([
    { methodName: "getBalance", args: [address] },
    { methodName: "getSlot", args: [] },
  ]);
  // The proxy's spend cap is reached by now: web3.js throws the proxy's JSON-RPC error.
  let refused = null;
  try {
    await connection.getSlot();
  } catch (e) {
    refused = String(e?.message ?? e);
  }
  console.log(
    JSON.stringify({ lamports, slot, batchLamports: batch[0]?.result?.value, batchSlot: batch[1]?.result, refused }),
  );
});
