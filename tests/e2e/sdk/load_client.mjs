// tests/e2e/sdk/load_client.mjs: steady load from an unmodified application
// (the official `openai` package, default base URL, key from OPENAI_API_KEY,
// detour's CA root through NODE_EXTRA_CA_CERTS), for the transition scenarios
// (tests/e2e/lib.sh scen_*, bench/transition.sh).
//
//   node load_client.mjs [--workers N] [--interval-ms MS] [--duration-ms MS]
//                        [--stop FILE] [--stream yes|no] [--timeout MS] [--retries N]
//
// N workers each send one chat completion after the other, MS apart, on the
// SDK's kept-alive connection pool, until the duration has passed or FILE
// exists. One JSON line per request, written as it ends:
//   {"w", "start", "first", "end" (wall-clock ms, fractional; first: the
//    first streamed piece of content, or the answer's head), "ok", "via"
//    (x-detour-provider, "direct" when the answer did not come through
//    detour), "tokens" (completion tokens), "error" | null}
// The SDK retries nothing by default (--retries 0): every error detour let
// through is seen. --retries 2 is the SDK's own default, what an unmodified
// application does (failover mode relies on it: an aborted connection is
// retried on a new one).
import { existsSync } from 'node:fs';
import OpenAI from 'openai';

const args = { workers: 2, 'interval-ms': 100, 'duration-ms': 10000, stop: '', stream: 'yes', timeout: 15000, retries: 0 };
for (let i = 2; i < process.argv.length; i += 2) {
	const k = process.argv[i].replace(/^--/, ''), v = process.argv[i + 1];
	if (!(k in args) || v === undefined) {
		console.error(`usage: load_client.mjs [--workers N] [--interval-ms MS] [--duration-ms MS] [--stop FILE] [--stream yes|no] [--timeout MS] [--retries N]; bad: ${process.argv[i]}`);
		process.exit(2);
	}
	args[k] = typeof args[k] === 'number' ? Number(v) : v;
}

const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY, maxRetries: args.retries, timeout: args.timeout });
const via = (response) => response.headers.get('x-detour-provider') ?? 'direct';
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = now() + args['duration-ms'];
const stopped = () => now() >= until || (args.stop && existsSync(args.stop));

async function one(w, i) {
	const r = { w, start: now(), first: null, end: null, ok: false, via: null, tokens: 0, error: null };
	const body = {
		model: 'gpt-4o-mini',
		messages: [{ role: 'user', content: `load worker ${w} request ${i}` }],
	};
	try {
		if (args.stream === 'yes') {
			const { data, response } = await client.chat.completions
				.create({ ...body, stream: true, stream_options: { include_usage: true } })
				.withResponse();
			r.via = via(response);
			for await (const chunk of data) {
				if (r.first === null && chunk.choices?.[0]?.delta?.content)
					r.first = now();
				if (chunk.usage)
					r.tokens = chunk.usage.completion_tokens ?? 0;
			}
		} else {
			const { data, response } = await client.chat.completions.create(body).withResponse();
			r.first = now();
			r.via = via(response);
			r.tokens = data.usage?.completion_tokens ?? 0;
		}
		r.ok = true;
	} catch (e) {
		r.error = `${e?.constructor?.name ?? 'Error'} ${e?.status ?? ''} ${e?.message ?? e}`.trim();
	}
	r.end = now();
	console.log(JSON.stringify(r));
}

async function worker(w) {
	for (let i = 1; !stopped(); i++) {
		await one(w, i);
		await sleep(args['interval-ms']);
	}
}

await Promise.all(Array.from({ length: args.workers }, (_, w) => worker(w)));
