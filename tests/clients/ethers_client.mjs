// ethers v6 against a running node, through ethers' documented API only.
//
//   node ethers_client.mjs CONFIG.json
//
// CONFIG: {"ethersPrefix": folder whose node_modules holds ethers, "http": "http://127.0.0.1:PORT/",
//          "ws": "ws://127.0.0.1:PORT/", "key": "0x..." (a funded key), "chainId": N,
//          "token": {"bytecode": "0x...", "abi": [...]}}   (an ERC-20-like token: its whole supply to its creator)
//
// Prints one JSON object on stdout: {"ok": all checks passed, "checks": {name: {"ok": true, ...facts} or
// {"ok": false, "error": "..."}}, "rpcErrors": [{method, error}] (JSON-RPC errors the node answered),
// "rpcMethods": [methods ethers called]}. Exits 0 when every check passed, 1 when one failed, 2 when the
// script itself could not run. Each check has its own timeout, so one that hangs (a WebSocket the node
// does not speak, an event that never comes) fails alone.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const ethers = createRequire(join(config.ethersPrefix, "package.json"))("ethers");

const checks = {};
const rpcErrors = [];
const rpcMethods = new Set();
const POLL_MS = 200;

const json = (value) => JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function describe(error) {
    if (error == null) return String(error);
    const parts = [error.shortMessage || error.message || String(error)];
    if (error.code) parts.push(`code=${error.code}`);
    const inner = error.info?.error ?? error.error;
    if (inner) parts.push(`rpc error=${json(inner)}`);
    if (error.info?.payload) parts.push(`payload=${json(error.info.payload).slice(0, 400)}`);
    return parts.join("; ");
}

function within(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function check(name, body, ms = 15000) {
    try {
        checks[name] = { ok: true, ...(await within(body(), ms, name)) };
    } catch (error) {
        checks[name] = { ok: false, error: describe(error) };
    }
    return checks[name].ok;
}

// Resolves with the first value `register(resolve)` hands on that satisfies `accept`.
function firstEvent(register, accept = () => true) {
    return new Promise((resolve) => register((...args) => { if (accept(...args)) resolve(args); }));
}

function watchRpc(provider, label) {
    const methods = new Map();  // request id -> method
    provider.on("debug", (event) => {
        if (event.action === "sendRpcPayload") {
            for (const p of [event.payload].flat()) {
                methods.set(p.id, p.method);
                rpcMethods.add(`${label}:${p.method}`);
            }
        } else if (event.action === "receiveRpcResult") {
            for (const r of [event.result].flat()) {
                if (r && r.error) rpcErrors.push({ via: label, method: methods.get(r.id), error: r.error });
            }
        } else if (event.action === "receiveRpcError") {
            rpcErrors.push({ via: label, method: null, error: describe(event.error) });
        }
    });
}

function receiptFacts(receipt) {
    return { status: receipt.status, type: receipt.type, blockNumber: receipt.blockNumber,
             gasUsed: receipt.gasUsed, gasPrice: receipt.gasPrice, logs: receipt.logs.length };
}

async function main() {
    // cacheTimeout -1: ethers otherwise answers a repeated request within 250 ms from its cache, so a
    // transaction sent right after another one's receipt gets the earlier "pending" nonce (NONCE_EXPIRED).
    const http = new ethers.JsonRpcProvider(config.http, undefined, { pollingInterval: POLL_MS, cacheTimeout: -1 });
    watchRpc(http, "http");
    const wallet = new ethers.Wallet(config.key, http);
    const state = {};

    await check("network", async () => {
        const network = await http.getNetwork();
        if (network.chainId !== BigInt(config.chainId)) {
            throw new Error(`chain id ${network.chainId}, expected ${config.chainId}`);
        }
        return { chainId: network.chainId, blockNumber: await http.getBlockNumber(),
                 balance: await http.getBalance(wallet.address) };
    });

    await check("feeData", async () => {
        const fee = await http.getFeeData();
        const block = await http.getBlock("latest");
        state.fee = fee;
        return { gasPrice: fee.gasPrice, maxFeePerGas: fee.maxFeePerGas,
                 maxPriorityFeePerGas: fee.maxPriorityFeePerGas, baseFeePerGas: block.baseFeePerGas };
    });

    // provider.on("block") and provider.on("pending") over HTTP: eth_blockNumber polling and
    // eth_newPendingTransactionFilter; the transfer below makes the block and the pending transaction.
    const httpBlock = firstEvent((cb) => http.on("block", cb));
    const httpPending = firstEvent((cb) => http.on("pending", cb), (hash) => hash === state.defaultHash);
    await sleep(3 * POLL_MS);  // the block poller's first poll only records the current height

    await check("defaultTransaction", async () => {
        const to = ethers.Wallet.createRandom().address;
        const value = 10n ** 15n;
        const tx = await wallet.sendTransaction({ to, value });
        state.defaultHash = tx.hash;
        const receipt = await tx.wait();
        const fetched = await http.getTransaction(tx.hash);
        state.defaultBlock = receipt.blockNumber;
        return { hash: tx.hash, type: tx.type, maxFeePerGas: tx.maxFeePerGas, fetchedType: fetched.type,
                 receipt: receiptFacts(receipt), recipientBalance: await http.getBalance(to), value };
    });

    await check("httpBlockEvent", async () => {
        const [number] = await within(httpBlock, 5000, 'provider.on("block")');
        return { blockNumber: number };
    }, 6000);

    await check("httpPendingEvent", async () => {
        const [hash] = await within(httpPending, 5000, 'provider.on("pending") for the default transaction');
        return { hash };
    }, 6000);

    await check("legacyTransaction", async () => {
        const to = ethers.Wallet.createRandom().address;
        const value = 777n;
        const gasPrice = state.fee?.gasPrice ?? (await http.getFeeData()).gasPrice;
        if (gasPrice == null) throw new Error("getFeeData() gave no gasPrice (eth_gasPrice)");
        const tx = await wallet.sendTransaction({ to, value, type: 0, gasPrice });
        const receipt = await tx.wait();
        const fetched = await http.getTransaction(tx.hash);
        return { hash: tx.hash, type: tx.type, gasPrice, fetchedType: fetched.type, fetchedGasPrice: fetched.gasPrice,
                 fetchedChainId: fetched.chainId, receipt: receiptFacts(receipt),
                 recipientBalance: await http.getBalance(to), value };
    });

    await check("tokenDeploy", async () => {
        const factory = new ethers.ContractFactory(config.token.abi, config.token.bytecode, wallet);
        const token = await factory.deploy();
        await token.waitForDeployment();
        const receipt = await token.deploymentTransaction().wait();
        state.token = token;
        state.tokenAddress = await token.getAddress();
        state.deployBlock = receipt.blockNumber;
        return { address: state.tokenAddress, receipt: receiptFacts(receipt),
                 codeBytes: ethers.dataLength(await http.getCode(state.tokenAddress)) };
    }, 20000);

    const recipient = ethers.Wallet.createRandom().address;
    const amount = 1234n;
    let contractOnEvent = null;
    if (state.token) {
        // contract.on over HTTP: eth_newFilter + eth_getFilterChanges
        contractOnEvent = firstEvent((cb) => state.token.on("Transfer", cb), (from, to) => to === recipient);
        await sleep(3 * POLL_MS);
    }

    await check("tokenCallAndTransfer", async () => {
        const token = state.token;
        if (!token) throw new Error("no token (tokenDeploy failed)");
        const supply = await token.balanceOf(wallet.address);
        const tx = await token.transfer(recipient, amount);
        const receipt = await tx.wait();
        state.transferHash = tx.hash;
        const events = receipt.logs.filter((log) => log instanceof ethers.EventLog && log.eventName === "Transfer")
            .map((log) => ({ from: log.args.from, to: log.args.to, value: log.args.value }));
        return { supplyBefore: supply, senderAfter: await token.balanceOf(wallet.address),
                 recipientAfter: await token.balanceOf(recipient), amount, type: tx.type,
                 receipt: receiptFacts(receipt), receiptEvents: events };
    });

    await check("queryFilter", async () => {
        const token = state.token;
        if (!token) throw new Error("no token (tokenDeploy failed)");
        const found = await token.queryFilter(token.filters.Transfer(wallet.address, recipient), state.deployBlock,
                                              "latest");
        return { events: found.map((e) => ({ name: e.eventName, from: e.args.from, to: e.args.to,
                                               value: e.args.value, transactionHash: e.transactionHash,
                                               blockNumber: e.blockNumber })) };
    });

    await check("contractOn", async () => {
        if (!contractOnEvent) throw new Error("no token (tokenDeploy failed)");
        const [from, to, value, payload] = await within(contractOnEvent, 5000, 'contract.on("Transfer")');
        return { from, to, value, transactionHash: payload.log.transactionHash };
    }, 6000);
    if (state.token) await state.token.removeAllListeners();
    await http.removeAllListeners("block");
    await http.removeAllListeners("pending");

    // WebSocket on the same port: eth_subscribe newHeads, logs and newPendingTransactions.
    const socketErrors = [];
    let ws = null;
    await check("wsConnect", async () => {
        ws = new ethers.WebSocketProvider(config.ws);
        ws.websocket.onerror = (event) => socketErrors.push(event?.message || event?.error?.message || String(event));
        watchRpc(ws, "ws");
        try {
            const network = await within(ws.getNetwork(), 5000, "WebSocketProvider.getNetwork()");
            return { chainId: network.chainId, blockNumber: await ws.getBlockNumber() };
        } catch (error) {
            if (socketErrors.length) error.message += `; websocket errors: ${socketErrors.join(" | ")}`;
            throw error;
        }
    }, 7000);

    if (checks.wsConnect.ok) {
        const wsBlock = firstEvent((cb) => ws.on("block", cb), (n) => n > (state.defaultBlock ?? -1));
        const wsPending = firstEvent((cb) => ws.on("pending", cb), (hash) => hash === state.wsTransferHash);
        const wsToken = state.token ? new ethers.Contract(state.tokenAddress, config.token.abi, ws) : null;
        const wsLog = wsToken ? firstEvent((cb) => wsToken.on("Transfer", cb), (f, to) => to === recipient) : null;
        await sleep(500);  // the eth_subscribe answers arrive
        await check("wsTrigger", async () => {
            if (!state.token) throw new Error("no token (tokenDeploy failed)");
            const tx = await state.token.transfer(recipient, 1n);
            state.wsTransferHash = tx.hash;
            const receipt = await tx.wait();
            state.wsTransferBlock = receipt.blockNumber;
            return { hash: tx.hash, receipt: receiptFacts(receipt) };
        });
        await check("wsBlockEvent", async () => {
            const [number] = await within(wsBlock, 5000, 'WebSocketProvider.on("block") (eth_subscribe newHeads)');
            return { blockNumber: number };
        }, 6000);
        await check("wsLogEvent", async () => {
            if (!wsLog) throw new Error("no token (tokenDeploy failed)");
            const [from, to, value, payload] = await within(wsLog, 5000,
                                                            'contract.on("Transfer") over WebSocket (eth_subscribe logs)');
            return { from, to, value, transactionHash: payload.log.transactionHash };
        }, 6000);
        await check("wsPendingEvent", async () => {
            const [hash] = await within(wsPending, 5000,
                                        'WebSocketProvider.on("pending") (eth_subscribe newPendingTransactions)');
            return { hash };
        }, 6000);
    }
    if (ws) {
        try { await ws.destroy(); } catch { /* the socket never opened */ }
    }
    http.destroy();

    const ok = Object.values(checks).every((c) => c.ok);
    process.stdout.write(json({ ok, address: wallet.address, checks, rpcErrors, rpcMethods: [...rpcMethods].sort() }) + "\n");
    return ok ? 0 : 1;
}

main().then((code) => process.exit(code), (error) => {
    process.stdout.write(json({ ok: false, fatal: describe(error), checks, rpcErrors }) + "\n");
    process.exit(2);
});
