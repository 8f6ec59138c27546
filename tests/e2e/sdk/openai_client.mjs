// tests/e2e/sdk/openai_client.mjs: an application using the official `openai`
// npm package the way applications do, unmodified: default base URL
// (https://api.openai.com/v1; detour's cgroup hook, not this script, sends the
// connection to detourd), key from OPENAI_API_KEY, detour's CA root trusted
// through NODE_EXTRA_CA_CERTS (Node ignores the system store).
//
//   node openai_client.mjs [--n N] [--stream no|yes|both] [--model M] [--tag T]
//                          [--timeout MS] [--retries N] [--pause MS] [--usage yes|no]
//
// Runs N non-streaming and/or N streaming chat completions, one after the
// other (--pause MS between them) on the SDK's own (kept-alive) connection
// pool, and prints one JSON line per request as it ends:
//   {"i", "ok", "mode": "nonstream"|"stream", "model", "provider" (x-fakellm-name),
//    "via" (x-detour-provider), "via_model" (x-detour-model), "text", "text_len", "chunks", "usage", "finish",
//    "ms" (the SDK's call, its retries included), streams: "usage_members" (chunks
//    with a usage member, even null) and "empty_choices" (chunks without choices),
//    "error": {"class", "status", "message", "type", "body_message", "tried"} | null}
// then a summary line {"summary": true, "requests", "ok", "errors"}.
// Always exits 0 when it ran: tests/e2e/test_sdk_openai.sh judges the lines.
import OpenAI from 'openai';

// --usage no: streams do not ask for the usage chunk (stream_options)
const args = { n: 3, stream: 'both', model: 'gpt-4o-mini', tag: 'sdk', timeout: 15000, retries: 0, pause: 0,
	usage: 'yes' };
for (let i = 2; i < process.argv.length; i += 2) {
	const k = process.argv[i].replace(/^--/, ''), v = process.argv[i + 1];
	if (!(k in args) || v === undefined) {
		console.error(`usage: openai_client.mjs [--n N] [--stream no|yes|both] [--model M] [--tag T] [--timeout MS] [--retries N] [--pause MS] [--usage yes|no]; bad: ${process.argv[i]}`);
		process.exit(2);
	}
	args[k] = typeof args[k] === 'number' ? Number(v) : v;
}

const client = new OpenAI({
	apiKey: process.env.OPENAI_API_KEY,
	// No SDK retries by default: the SDK would otherwise retry 429s, 5xx and
	// connection errors on its own and hide an error detour let through.
	// --retries N is for the tests that count on the SDK reconnecting after
	// a connection error, as it does with its default of 2.
	maxRetries: args.retries,
	timeout: args.timeout,
});

function describe(e) {
	return {
		class: e?.constructor?.name ?? typeof e,
		status: e?.status ?? null,
		message: String(e?.message ?? e),
		type: e?.type ?? null,
		body_message: typeof e?.error?.message === 'string' ? e.error.message : null,
		tried: e?.headers?.get?.('x-detour-tried') ?? null,
		cause: e?.cause ? String(e.cause?.code ?? e.cause?.message ?? e.cause) : null,
	};
}

function header(response, name) {
	return response?.headers?.get?.(name) ?? null;
}

async function one(i, stream) {
	const r = { i, ok: false, mode: stream ? 'stream' : 'nonstream', model: null, provider: null, via: null,
		text: '', text_len: 0, chunks: 0, usage: null, finish: null, ms: 0, error: null,
		usage_members: 0, empty_choices: 0 };
	const t0 = performance.now();
	const body = {
		model: args.model,
		messages: [{ role: 'user', content: `${args.tag} request ${i} ${r.mode} please answer` }],
	};
	try {
		if (!stream) {
			const { data, response } = await client.chat.completions.create(body).withResponse();
			r.provider = header(response, 'x-fakellm-name');
			r.via = header(response, 'x-detour-provider');
			r.via_model = header(response, 'x-detour-model');
			r.model = data.model ?? null;
			r.text = data.choices?.[0]?.message?.content ?? '';
			r.finish = data.choices?.[0]?.finish_reason ?? null;
			r.usage = data.usage ?? null;
		} else {
			const { data, response } = await client.chat.completions
				.create(args.usage === 'yes' ? { ...body, stream: true, stream_options: { include_usage: true } }
					: { ...body, stream: true })
				.withResponse();
			r.provider = header(response, 'x-fakellm-name');
			r.via = header(response, 'x-detour-provider');
			r.via_model = header(response, 'x-detour-model');
			const models = new Set();
			for await (const chunk of data) {
				r.chunks++;
				if (chunk.model) models.add(chunk.model);
				const c = chunk.choices?.[0];
				if (c?.delta?.content) r.text += c.delta.content;
				if (c?.finish_reason) r.finish = c.finish_reason;
				if (chunk.usage) r.usage = chunk.usage;
				if ('usage' in chunk) r.usage_members++;
				if (!chunk.choices?.length) r.empty_choices++;
			}
			r.model = [...models].join(',') || null;
		}
		r.ok = true;
	} catch (e) {
		r.error = describe(e);
	}
	r.text_len = r.text.length;
	r.ms = Math.round(performance.now() - t0);
	return r;
}

const modes = args.stream === 'yes' ? [true] : args.stream === 'no' ? [false] : [false, true];
let n = 0, good = 0;
for (const stream of modes) {
	for (let i = 1; i <= args.n; i++) {
		if (n > 0 && args.pause > 0)
			await new Promise((done) => setTimeout(done, args.pause));
		const r = await one(i, stream);
		n++;
		if (r.ok) good++;
		console.log(JSON.stringify(r));
	}
}
console.log(JSON.stringify({ summary: true, requests: n, ok: good, errors: n - good }));
