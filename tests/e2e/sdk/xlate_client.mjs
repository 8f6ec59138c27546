// tests/e2e/sdk/xlate_client.mjs: an application using an official SDK (the
// `openai` or the `@anthropic-ai/sdk` npm package) the way applications do,
// unmodified: default base URL, key from the environment, detour's CA root
// through NODE_EXTRA_CA_CERTS, no SDK retries (every error must show).
//
//   node xlate_client.mjs --sdk openai|anthropic --model M [--tag T] [--cases LIST] [--json yes]
//
// Cases (comma-separated, default all): nonstream, stream, tools (a tool-call
// round trip: the model calls `lookup`, the tool's result goes back, the model
// answers), tools-stream (the same, streamed). One JSON line per case:
//   {"case", "ok", "model", "provider" (x-fakellm-name), "via" (x-detour-provider),
//    "via_model" (x-detour-model), "tried" (x-detour-tried), "text", "finish", "usage": {"in", "out"},
//    "call": {"id", "name", "args"} | null, "ids_match", "error": {...} | null}
// Always exits 0 when it ran: tests/e2e/test_translate.sh judges the lines.
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const args = { sdk: 'openai', model: 'gpt-4o-mini', tag: 'xlate', cases: 'nonstream,stream,tools,tools-stream',
	json: 'no', timeout: 15000 };
for (let i = 2; i < process.argv.length; i += 2) {
	const k = process.argv[i].replace(/^--/, ''), v = process.argv[i + 1];
	if (!(k in args) || v === undefined) {
		console.error(`usage: xlate_client.mjs --sdk openai|anthropic --model M [--tag T] [--cases LIST] [--json yes]; bad: ${process.argv[i]}`);
		process.exit(2);
	}
	args[k] = typeof args[k] === 'number' ? Number(v) : v;
}

const RESULT = 'sunny and warm today in Lisbon';
const prompt = (c) => `${args.tag} ${c} please answer`;

function describe(e) {
	return {
		class: e?.constructor?.name ?? typeof e,
		status: e?.status ?? null,
		message: String(e?.message ?? e),
		type: e?.error?.error?.type ?? e?.error?.type ?? e?.type ?? null,
		tried: e?.headers?.get?.('x-detour-tried') ?? null,
	};
}

function headers(r, response) {
	const h = (n) => response?.headers?.get?.(n) ?? null;
	r.provider = h('x-fakellm-name');
	r.via = h('x-detour-provider');
	r.via_model = h('x-detour-model');
	r.tried = h('x-detour-tried');
}

// ---- OpenAI ---------------------------------------------------------------------

const OPENAI_TOOLS = [{
	type: 'function',
	function: {
		name: 'lookup', description: 'Look a thing up',
		parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
	},
}];

async function openaiTurn(client, r, body, stream) {
	if (!stream) {
		const { data, response } = await client.chat.completions.create(body).withResponse();
		headers(r, response);
		const c = data.choices[0];
		const tc = c.message.tool_calls?.[0];
		return {
			model: data.model, text: c.message.content ?? '', finish: c.finish_reason,
			usage: { in: data.usage?.prompt_tokens, out: data.usage?.completion_tokens },
			call: tc ? { id: tc.id, name: tc.function.name, args: tc.function.arguments } : null,
		};
	}
	const { data, response } = await client.chat.completions
		.create({ ...body, stream: true, stream_options: { include_usage: true } }).withResponse();
	headers(r, response);
	const out = { model: null, text: '', finish: null, usage: null, call: null, chunks: 0 };
	for await (const chunk of data) {
		out.chunks++;
		out.model ??= chunk.model;
		const c = chunk.choices?.[0];
		if (c?.delta?.content) out.text += c.delta.content;
		for (const t of c?.delta?.tool_calls ?? []) {
			out.call ??= { id: '', name: '', args: '' };
			if (t.id) out.call.id = t.id;
			if (t.function?.name) out.call.name += t.function.name;
			if (t.function?.arguments) out.call.args += t.function.arguments;
		}
		if (c?.finish_reason) out.finish = c.finish_reason;
		if (chunk.usage) out.usage = { in: chunk.usage.prompt_tokens, out: chunk.usage.completion_tokens };
	}
	return out;
}

async function openaiCase(client, name) {
	const stream = name.endsWith('stream') && name !== 'nonstream';
	const r = { case: name };
	const user = { role: 'user', content: prompt(name) };
	const body = { model: args.model, messages: [user] };
	if (args.json === 'yes') body.response_format = { type: 'json_object' };
	if (!name.startsWith('tools'))
		return Object.assign(r, await openaiTurn(client, r, body, stream));
	const first = await openaiTurn(client, r, { ...body, tools: OPENAI_TOOLS }, stream);
	r.first = { finish: first.finish, model: first.model };
	r.call = first.call;
	if (!first.call)
		throw Object.assign(new Error(`no tool call: ${JSON.stringify(first)}`), { first });
	const history = [user,
		{ role: 'assistant', content: null, tool_calls: [{ id: first.call.id, type: 'function',
			function: { name: first.call.name, arguments: first.call.args } }] },
		{ role: 'tool', tool_call_id: first.call.id, content: RESULT }];
	const second = await openaiTurn(client, r, { model: args.model, messages: history, tools: OPENAI_TOOLS }, stream);
	return Object.assign(r, { model: second.model, text: second.text, finish: second.finish, usage: second.usage });
}

// ---- Anthropic ------------------------------------------------------------------

const ANTHROPIC_TOOLS = [{
	name: 'lookup', description: 'Look a thing up',
	input_schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
}];

async function anthropicTurn(client, r, body, stream) {
	if (!stream) {
		const { data, response } = await client.messages.create(body).withResponse();
		headers(r, response);
		const text = data.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
		const tu = data.content.find((b) => b.type === 'tool_use');
		return {
			model: data.model, text, finish: data.stop_reason,
			usage: { in: data.usage?.input_tokens, out: data.usage?.output_tokens },
			call: tu ? { id: tu.id, name: tu.name, args: JSON.stringify(tu.input) } : null,
		};
	}
	const { data, response } = await client.messages.create({ ...body, stream: true }).withResponse();
	headers(r, response);
	const out = { model: null, text: '', finish: null, usage: { in: null, out: null }, call: null, events: 0 };
	let json = '';
	for await (const ev of data) {
		out.events++;
		if (ev.type === 'message_start') {
			out.model = ev.message.model;
			out.usage.in = ev.message.usage?.input_tokens;
		} else if (ev.type === 'content_block_start' && ev.content_block.type === 'tool_use') {
			out.call = { id: ev.content_block.id, name: ev.content_block.name, args: '' };
		} else if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') {
			out.text += ev.delta.text;
		} else if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') {
			json += ev.delta.partial_json;
		} else if (ev.type === 'message_delta') {
			out.finish = ev.delta.stop_reason;
			out.usage.out = ev.usage?.output_tokens;
			if (ev.usage?.input_tokens) out.usage.in = ev.usage.input_tokens;
		}
	}
	if (out.call) out.call.args = json;
	return out;
}

async function anthropicCase(client, name) {
	const stream = name.endsWith('stream') && name !== 'nonstream';
	const r = { case: name };
	const user = { role: 'user', content: prompt(name) };
	const body = { model: args.model, max_tokens: 256, messages: [user] };
	if (!name.startsWith('tools'))
		return Object.assign(r, await anthropicTurn(client, r, body, stream));
	const first = await anthropicTurn(client, r, { ...body, tools: ANTHROPIC_TOOLS }, stream);
	r.first = { finish: first.finish, model: first.model };
	r.call = first.call;
	if (!first.call)
		throw Object.assign(new Error(`no tool call: ${JSON.stringify(first)}`), { first });
	const history = [user,
		{ role: 'assistant', content: [{ type: 'tool_use', id: first.call.id, name: first.call.name,
			input: JSON.parse(first.call.args || '{}') }] },
		{ role: 'user', content: [{ type: 'tool_result', tool_use_id: first.call.id, content: RESULT }] }];
	const second = await anthropicTurn(client, r, { ...body, messages: history, tools: ANTHROPIC_TOOLS }, stream);
	return Object.assign(r, { model: second.model, text: second.text, finish: second.finish, usage: second.usage });
}

// ---- main -------------------------------------------------------------------------

const client = args.sdk === 'anthropic'
	? new Anthropic({ apiKey: process.env.ANTHROPIC_API_KEY, maxRetries: 0, timeout: args.timeout })
	: new OpenAI({ apiKey: process.env.OPENAI_API_KEY, maxRetries: 0, timeout: args.timeout });
const run = args.sdk === 'anthropic' ? anthropicCase : openaiCase;
let n = 0, good = 0;
for (const name of args.cases.split(',')) {
	let r;
	try {
		r = await run(client, name);
		r.ok = true;
	} catch (e) {
		r = { case: name, ok: false, error: describe(e) };
	}
	n++;
	if (r.ok) good++;
	console.log(JSON.stringify(r));
}
console.log(JSON.stringify({ summary: true, requests: n, ok: good, errors: n - good }));
