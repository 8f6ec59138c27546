// SPDX-License-Identifier: MIT
/* Request translation: every mapping rule (parse in one shape, emit in
 * another, compare as JSON), round trips, tool-call ids over a two-turn
 * history in every direction, refused inputs and outputs, the arena.
 * Fixtures are written with ' for " (none holds an apostrophe). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "xlate.h"

#define O DT_FAMILY_OPENAI
#define A DT_FAMILY_ANTHROPIC
#define G DT_FAMILY_GEMINI
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const family_names[] = { "openai", "anthropic", "gemini" };

/* The fixture with ' turned into ", in a static buffer. */
static const char *J(const char *fixture)
{
	static char buf[2][16384];
	static int which;
	char *d = buf[which ^= 1];
	size_t n = strlen(fixture);

	assert_true(n < sizeof(buf[0]));
	for (size_t i = 0; i <= n; i++)
		d[i] = fixture[i] == '\'' ? '"' : fixture[i];
	return d;
}

static void parse_ok(enum dt_family shape, const char *body, struct dt_xrequest *r)
{
	char err[256];

	if (dt_xreq_parse(shape, body, strlen(body), shape == G ? "gemini-x" : NULL, false, r, err,
			  sizeof(err)))
		fail_msg("parse %s: %s\n%s", family_names[shape], err, body);
}

static char *emit_ok(enum dt_family to, const struct dt_xrequest *r)
{
	char err[256];
	size_t len;
	char *out = dt_xreq_emit(to, r, "M", &len, err, sizeof(err));

	if (!out)
		fail_msg("emit %s: %s", family_names[to], err);
	assert_int_equal(strlen(out), len);
	return out;
}

static void assert_json_equal(const char *got, const char *want, const char *what)
{
	json_error_t e;
	json_t *g = json_loads(got, 0, &e), *w;

	if (!g)
		fail_msg("%s: output is not JSON (%s): %s", what, e.text, got);
	w = json_loads(want, 0, &e);
	if (!w)
		fail_msg("%s: fixture is not JSON (%s): %s", what, e.text, want);
	if (!json_equal(g, w))
		fail_msg("%s:\n got  %s\n want %s", what, got, want);
	json_decref(g);
	json_decref(w);
}

/* ---- mapping rules -------------------------------------------------------- */

struct mapping {
	const char *name;
	enum dt_family from, to;
	const char *in, *want;
};

static const struct mapping mappings[] = {
	/* OpenAI -> Anthropic */
	{ "system+developer, temperature clamped, top_p dropped for temperature, stop string, user",
	  O, A,
	  "{'model':'gpt','messages':[{'role':'system','content':'Be brief.'},"
	  "{'role':'developer','content':[{'type':'text','text':'Use metric.'}]},"
	  "{'role':'user','content':'Hi'}],'max_tokens':100,'temperature':1.5,'top_p':0.9,"
	  "'stop':'END','user':'u1','stream':true,'stream_options':{'include_usage':true},"
	  "'seed':7,'presence_penalty':0.5,'frequency_penalty':0.1,'logprobs':true}",
	  "{'model':'M','max_tokens':100,'system':'Be brief.\\n\\nUse metric.',"
	  "'messages':[{'role':'user','content':[{'type':'text','text':'Hi'}]}],"
	  "'temperature':1,'stop_sequences':['END'],'metadata':{'user_id':'u1'},'stream':true}" },
	{ "default max_tokens, max_completion_tokens, top_p alone", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'top_p':0.5}",
	  "{'model':'M','max_tokens':4096,'messages':[{'role':'user','content':"
	  "[{'type':'text','text':'Hi'}]}],'top_p':0.5}" },
	{ "max_completion_tokens wins over max_tokens", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'max_tokens':5,"
	  "'max_completion_tokens':9}",
	  "{'model':'M','max_tokens':9,'messages':[{'role':'user','content':"
	  "[{'type':'text','text':'Hi'}]}]}" },
	{ "tools, required, no parallel calls, tool without parameters", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'tools':["
	  "{'type':'function','function':{'name':'f','description':'does f','parameters':"
	  "{'type':'object','properties':{'x':{'type':'integer'}},'required':['x']}}},"
	  "{'type':'function','function':{'name':'g'}}],'tool_choice':'required',"
	  "'parallel_tool_calls':false}",
	  "{'model':'M','max_tokens':4096,'messages':[{'role':'user','content':"
	  "[{'type':'text','text':'Hi'}]}],'tools':[{'name':'f','description':'does f',"
	  "'input_schema':{'type':'object','properties':{'x':{'type':'integer'}},'required':['x']}},"
	  "{'name':'g','input_schema':{'type':'object','properties':{}}}],"
	  "'tool_choice':{'type':'any','disable_parallel_tool_use':true}}" },
	{ "named tool choice; no parallel calls without a choice", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'tools':["
	  "{'type':'function','function':{'name':'f'}}],"
	  "'tool_choice':{'type':'function','function':{'name':'f'}}}",
	  "{'model':'M','max_tokens':4096,'messages':[{'role':'user','content':"
	  "[{'type':'text','text':'Hi'}]}],'tools':[{'name':'f','input_schema':"
	  "{'type':'object','properties':{}}}],'tool_choice':{'type':'tool','name':'f'}}" },
	{ "parallel_tool_calls false alone becomes auto without parallel use", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'tools':["
	  "{'type':'function','function':{'name':'f'}}],'parallel_tool_calls':false}",
	  "{'model':'M','max_tokens':4096,'messages':[{'role':'user','content':"
	  "[{'type':'text','text':'Hi'}]}],'tools':[{'name':'f','input_schema':"
	  "{'type':'object','properties':{}}}],"
	  "'tool_choice':{'type':'auto','disable_parallel_tool_use':true}}" },
	{ "tool_choice none; tool choice without tools is not sent", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'tool_choice':'none'}",
	  "{'model':'M','max_tokens':4096,'messages':[{'role':'user','content':"
	  "[{'type':'text','text':'Hi'}]}]}" },
	{ "tool history: results merged into one user message before the text", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':'Weather?'},"
	  "{'role':'assistant','content':'Looking.','tool_calls':["
	  "{'id':'call_1','type':'function','function':{'name':'w','arguments':'{\\'c\\':\\'P\\'}'}},"
	  "{'id':'call.2','type':'function','function':{'name':'t','arguments':''}}]},"
	  "{'role':'tool','tool_call_id':'call_1','content':'sunny'},"
	  "{'role':'tool','tool_call_id':'call.2','content':[{'type':'text','text':'noon'}]},"
	  "{'role':'user','content':'Thanks'}]}",
	  "{'model':'M','max_tokens':4096,'messages':["
	  "{'role':'user','content':[{'type':'text','text':'Weather?'}]},"
	  "{'role':'assistant','content':[{'type':'text','text':'Looking.'},"
	  "{'type':'tool_use','id':'call_1','name':'w','input':{'c':'P'}},"
	  "{'type':'tool_use','id':'call_2','name':'t','input':{}}]},"
	  "{'role':'user','content':[{'type':'tool_result','tool_use_id':'call_1','content':'sunny'},"
	  "{'type':'tool_result','tool_use_id':'call_2','content':'noon'},"
	  "{'type':'text','text':'Thanks'}]}]}" },
	{ "images: data URL to base64, http URL to url", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':[{'type':'text','text':'Look'},"
	  "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0K','detail':'low'}},"
	  "{'type':'image_url','image_url':{'url':'https://x.test/a.jpg'}}]}]}",
	  "{'model':'M','max_tokens':4096,'messages':[{'role':'user','content':["
	  "{'type':'text','text':'Look'},{'type':'image','source':{'type':'base64',"
	  "'media_type':'image/png','data':'iVBORw0K'}},"
	  "{'type':'image','source':{'type':'url','url':'https://x.test/a.jpg'}}]}]}" },
	{ "json_object: an instruction after the system prompt", O, A,
	  "{'model':'gpt','messages':[{'role':'system','content':'S'},{'role':'user','content':'Hi'}],"
	  "'response_format':{'type':'json_object'}}",
	  "{'model':'M','max_tokens':4096,'system':'S\\n\\nRespond with a single JSON object and "
	  "nothing else: no prose, no code fence.','messages':[{'role':'user','content':"
	  "[{'type':'text','text':'Hi'}]}]}" },
	{ "json_schema: the schema in the system prompt", O, A,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'response_format':"
	  "{'type':'json_schema','json_schema':{'name':'r','schema':{'type':'object'},'strict':true}}}",
	  "{'model':'M','max_tokens':4096,'system':'Respond with a single JSON object that matches "
	  "this JSON Schema, and nothing else: no prose, no code fence.\\nSchema: {\\'type\\':"
	  "\\'object\\'}','messages':[{'role':'user','content':[{'type':'text','text':'Hi'}]}]}" },
	/* OpenAI -> Gemini */
	{ "generation config, system, JSON schema, user dropped, stream not in the body", O, G,
	  "{'model':'gpt','messages':[{'role':'system','content':'S'},{'role':'user','content':'Hi'}],"
	  "'max_completion_tokens':50,'temperature':1.5,'top_p':0.9,'stop':['a','b'],'seed':3,"
	  "'presence_penalty':0.5,'frequency_penalty':-0.5,'n':2,'user':'u','stream':true,"
	  "'response_format':{'type':'json_schema','json_schema':{'name':'r','schema':"
	  "{'type':'object','properties':{'a':{'type':'string'}}}}}}",
	  "{'contents':[{'role':'user','parts':[{'text':'Hi'}]}],"
	  "'systemInstruction':{'parts':[{'text':'S'}]},'generationConfig':{'temperature':1.5,"
	  "'topP':0.9,'maxOutputTokens':50,'stopSequences':['a','b'],'candidateCount':2,'seed':3,"
	  "'presencePenalty':0.5,'frequencyPenalty':-0.5,'responseMimeType':'application/json',"
	  "'responseJsonSchema':{'type':'object','properties':{'a':{'type':'string'}}}}}" },
	{ "json_object: the MIME type alone", O, G,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],"
	  "'response_format':{'type':'json_object'}}",
	  "{'contents':[{'role':'user','parts':[{'text':'Hi'}]}],"
	  "'generationConfig':{'responseMimeType':'application/json'}}" },
	{ "tools, named choice", O, G,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'tools':["
	  "{'type':'function','function':{'name':'f','description':'d','parameters':"
	  "{'type':'object'}}}],'tool_choice':{'type':'function','function':{'name':'f'}},"
	  "'parallel_tool_calls':true}",
	  "{'contents':[{'role':'user','parts':[{'text':'Hi'}]}],'tools':[{'functionDeclarations':"
	  "[{'name':'f','description':'d','parametersJsonSchema':{'type':'object'}}]}],"
	  "'toolConfig':{'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['f']}}}" },
	{ "tool choice required and none", O, G,
	  "{'model':'gpt','messages':[{'role':'user','content':'Hi'}],'tools':["
	  "{'type':'function','function':{'name':'f'}}],'tool_choice':'required'}",
	  "{'contents':[{'role':'user','parts':[{'text':'Hi'}]}],'tools':[{'functionDeclarations':"
	  "[{'name':'f'}]}],'toolConfig':{'functionCallingConfig':{'mode':'ANY'}}}" },
	{ "tool history: names of results from their calls, responses as objects", O, G,
	  "{'model':'gpt','messages':[{'role':'user','content':'Weather?'},"
	  "{'role':'assistant','content':null,'tool_calls':["
	  "{'id':'c1','type':'function','function':{'name':'w','arguments':'{\\'c\\':1}'}},"
	  "{'id':'c2','type':'function','function':{'name':'t','arguments':'{}'}}]},"
	  "{'role':'tool','tool_call_id':'c1','content':'{\\'sky\\':\\'blue\\'}'},"
	  "{'role':'tool','tool_call_id':'c2','content':'noon'},"
	  "{'role':'assistant','content':'Blue at noon.'}]}",
	  "{'contents':[{'role':'user','parts':[{'text':'Weather?'}]},{'role':'model','parts':["
	  "{'functionCall':{'name':'w','args':{'c':1}},'thoughtSignature':"
	  "'skip_thought_signature_validator'},{'functionCall':{'name':'t','args':{}},"
	  "'thoughtSignature':'skip_thought_signature_validator'}]},{'role':'user','parts':["
	  "{'functionResponse':{'name':'w','response':{'sky':'blue'}}},"
	  "{'functionResponse':{'name':'t','response':{'result':'noon'}}}]},"
	  "{'role':'model','parts':[{'text':'Blue at noon.'}]}]}" },
	{ "inline image", O, G,
	  "{'model':'gpt','messages':[{'role':'user','content':[{'type':'image_url','image_url':"
	  "{'url':'data:image/jpeg;base64,/9j/4AAQ'}},{'type':'text','text':'What?'}]}]}",
	  "{'contents':[{'role':'user','parts':[{'inlineData':{'mimeType':'image/jpeg',"
	  "'data':'/9j/4AAQ'}},{'text':'What?'}]}]}" },
	/* OpenAI -> OpenAI */
	{ "stream always asks for usage; developer becomes system; top_k dropped", O, O,
	  "{'model':'gpt','messages':[{'role':'developer','content':'D'},{'role':'user','content':"
	  "'Hi'}],'max_tokens':10,'stream':true,'top_k':3,'n':1}",
	  "{'model':'M','messages':[{'role':'system','content':'D'},{'role':'user','content':'Hi'}],"
	  "'max_completion_tokens':10,'stream':true,'stream_options':{'include_usage':true}}" },
	/* Anthropic -> OpenAI */
	{ "system blocks, top_k dropped, stop_sequences, metadata, max_tokens", A, O,
	  "{'model':'claude','max_tokens':200,'system':[{'type':'text','text':'A'},"
	  "{'type':'text','text':'B','cache_control':{'type':'ephemeral'}}],"
	  "'messages':[{'role':'user','content':'Hi'}],'top_k':5,'temperature':0.3,"
	  "'stop_sequences':['X'],'metadata':{'user_id':'u9'},'thinking':{'type':'enabled',"
	  "'budget_tokens':1024}}",
	  "{'model':'M','messages':[{'role':'system','content':'A\\n\\nB'},"
	  "{'role':'user','content':'Hi'}],'max_completion_tokens':200,'temperature':0.3,"
	  "'stop':['X'],'user':'u9'}" },
	{ "tool use, thinking dropped, error result, any without parallel use", A, O,
	  "{'model':'claude','max_tokens':10,'messages':[{'role':'user','content':'Go'},"
	  "{'role':'assistant','content':[{'type':'thinking','thinking':'hmm','signature':'s'},"
	  "{'type':'text','text':'Calling.'},{'type':'tool_use','id':'toolu_1','name':'f',"
	  "'input':{'a':[1,2]}}]},{'role':'user','content':[{'type':'tool_result',"
	  "'tool_use_id':'toolu_1','content':'boom','is_error':true},{'type':'text','text':'Again'}]}],"
	  "'tools':[{'name':'f','input_schema':{'type':'object'}}],"
	  "'tool_choice':{'type':'any','disable_parallel_tool_use':true}}",
	  "{'model':'M','messages':[{'role':'user','content':'Go'},{'role':'assistant','content':"
	  "'Calling.','tool_calls':[{'id':'toolu_1','type':'function','function':{'name':'f',"
	  "'arguments':'{\\'a\\':[1,2]}'}}]},{'role':'tool','tool_call_id':'toolu_1','content':"
	  "'boom'},{'role':'user','content':'Again'}],'tools':[{'type':'function','function':"
	  "{'name':'f','parameters':{'type':'object'}}}],'tool_choice':'required',"
	  "'parallel_tool_calls':false,'max_completion_tokens':10}" },
	{ "images: base64 to a data URL, url kept", A, O,
	  "{'model':'claude','max_tokens':10,'messages':[{'role':'user','content':["
	  "{'type':'image','source':{'type':'base64','media_type':'image/gif','data':'R0lG'}},"
	  "{'type':'image','source':{'type':'url','url':'https://x.test/b.png'}}]}]}",
	  "{'model':'M','messages':[{'role':'user','content':[{'type':'image_url','image_url':"
	  "{'url':'data:image/gif;base64,R0lG'}},{'type':'image_url','image_url':"
	  "{'url':'https://x.test/b.png'}}]}],'max_completion_tokens':10}" },
	{ "tool_choice auto, tool, none", A, O,
	  "{'model':'claude','max_tokens':10,'messages':[{'role':'user','content':'x'}],"
	  "'tools':[{'name':'f','input_schema':{'type':'object'}}],'tool_choice':{'type':'tool',"
	  "'name':'f'},'stream':true}",
	  "{'model':'M','messages':[{'role':'user','content':'x'}],'tools':[{'type':'function',"
	  "'function':{'name':'f','parameters':{'type':'object'}}}],'tool_choice':{'type':'function',"
	  "'function':{'name':'f'}},'max_completion_tokens':10,'stream':true,"
	  "'stream_options':{'include_usage':true}}" },
	/* Anthropic -> Gemini */
	{ "tool history, error result, top_k, named choice", A, G,
	  "{'model':'claude','max_tokens':64,'top_k':40,'messages':[{'role':'user','content':'Go'},"
	  "{'role':'assistant','content':[{'type':'tool_use','id':'toolu_1','name':'f','input':{}}]},"
	  "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_1','content':"
	  "[{'type':'text','text':'bad'}],'is_error':true}]}],'tools':[{'name':'f','description':'F',"
	  "'input_schema':{'type':'object'}}],'tool_choice':{'type':'none'}}",
	  "{'contents':[{'role':'user','parts':[{'text':'Go'}]},{'role':'model','parts':["
	  "{'functionCall':{'name':'f','args':{}},'thoughtSignature':"
	  "'skip_thought_signature_validator'}]},{'role':'user','parts':[{'functionResponse':"
	  "{'name':'f','response':{'error':'bad'}}}]}],'tools':[{'functionDeclarations':[{'name':'f',"
	  "'description':'F','parametersJsonSchema':{'type':'object'}}]}],"
	  "'toolConfig':{'functionCallingConfig':{'mode':'NONE'}},"
	  "'generationConfig':{'topK':40,'maxOutputTokens':64}}" },
	/* Gemini -> OpenAI */
	{ "system instruction, generation config, snake_case names", G, O,
	  "{'system_instruction':{'parts':[{'text':'S1'},{'text':'S2'}]},'contents':[{'parts':"
	  "[{'text':'Hi'}]}],'generation_config':{'temperature':0.2,'top_p':0.8,'top_k':3,"
	  "'max_output_tokens':7,'stop_sequences':['Q'],'candidate_count':2,'seed':5,"
	  "'presence_penalty':0.1,'frequency_penalty':0.2,'thinking_config':{'thinking_budget':0}},"
	  "'safetySettings':[{'category':'HARM_CATEGORY_HATE_SPEECH','threshold':'BLOCK_NONE'}]}",
	  "{'model':'M','messages':[{'role':'system','content':'S1\\n\\nS2'},{'role':'user',"
	  "'content':'Hi'}],'max_completion_tokens':7,'temperature':0.2,'top_p':0.8,'stop':['Q'],"
	  "'presence_penalty':0.1,'frequency_penalty':0.2,'seed':5,'n':2}" },
	{ "calls get ids from turn and part; responses pair by name; thoughts dropped", G, O,
	  "{'contents':[{'role':'user','parts':[{'text':'Go'}]},{'role':'model','parts':["
	  "{'text':'plan','thought':true},{'functionCall':{'name':'a','args':{'x':1}}},"
	  "{'functionCall':{'name':'b'}},{'functionCall':{'name':'a','args':{'x':2}}}]},"
	  "{'role':'user','parts':[{'functionResponse':{'name':'a','response':{'result':'one'}}},"
	  "{'functionResponse':{'name':'a','response':{'v':2}}},"
	  "{'functionResponse':{'name':'b','response':{'error':'no'}}}]}]}",
	  "{'model':'M','messages':[{'role':'user','content':'Go'},{'role':'assistant','content':null,"
	  "'tool_calls':[{'id':'call_1_1','type':'function','function':{'name':'a','arguments':"
	  "'{\\'x\\':1}'}},{'id':'call_1_2','type':'function','function':{'name':'b','arguments':"
	  "'{}'}},{'id':'call_1_3','type':'function','function':{'name':'a','arguments':"
	  "'{\\'x\\':2}'}}]},{'role':'tool','tool_call_id':'call_1_1','content':'one'},"
	  "{'role':'tool','tool_call_id':'call_1_3','content':'{\\'v\\':2}'},"
	  "{'role':'tool','tool_call_id':'call_1_2','content':'no'}]}" },
	{ "OpenAPI parameters lowercased, response schema, ANY with one name", G, O,
	  "{'contents':[{'role':'user','parts':[{'text':'Hi'}]}],'tools':[{'functionDeclarations':"
	  "[{'name':'f','parameters':{'type':'OBJECT','properties':{'n':{'type':'INTEGER'},"
	  "'type':{'type':'STRING','description':'Kind'}}}}]}],'toolConfig':{'functionCallingConfig':"
	  "{'mode':'ANY','allowedFunctionNames':['f']}},'generationConfig':{'responseMimeType':"
	  "'application/json','responseSchema':{'type':'ARRAY','items':{'type':'STRING'}}}}",
	  "{'model':'M','messages':[{'role':'user','content':'Hi'}],'tools':[{'type':'function',"
	  "'function':{'name':'f','parameters':{'type':'object','properties':{'n':{'type':"
	  "'integer'},'type':{'type':'string','description':'Kind'}}}}}],'tool_choice':{'type':"
	  "'function','function':{'name':'f'}},'response_format':{'type':'json_schema',"
	  "'json_schema':{'name':'response','schema':{'type':'array','items':{'type':'string'}}}}}" },
	{ "file data of Gemini stays Gemini's; inline image to data URL", G, G,
	  "{'contents':[{'role':'user','parts':[{'fileData':{'mimeType':'image/png','fileUri':"
	  "'https://generativelanguage.googleapis.com/v1beta/files/abc'}},{'inline_data':"
	  "{'mime_type':'image/webp','data':'UklG'}}]}],'toolConfig':{'functionCallingConfig':"
	  "{'mode':'VALIDATED'}}}",
	  "{'contents':[{'role':'user','parts':[{'fileData':{'mimeType':'image/png','fileUri':"
	  "'https://generativelanguage.googleapis.com/v1beta/files/abc'}},{'inlineData':"
	  "{'mimeType':'image/webp','data':'UklG'}}]}]}" },
	{ "inline image to a data URL", G, O,
	  "{'contents':[{'role':'user','parts':[{'inlineData':{'mimeType':'image/png','data':'iV'}}]}]}",
	  "{'model':'M','messages':[{'role':'user','content':[{'type':'image_url','image_url':"
	  "{'url':'data:image/png;base64,iV'}}]}]}" },
	/* Gemini -> Anthropic */
	{ "derived ids, merged turns, JSON mode instruction", G, A,
	  "{'contents':[{'role':'user','parts':[{'text':'Go'}]},{'role':'user','parts':[{'text':"
	  "'Now'}]},{'role':'model','parts':[{'functionCall':{'name':'f','args':{'q':'x'}}}]},"
	  "{'role':'function','parts':[{'functionResponse':{'name':'f','response':{'ok':true}}}]}],"
	  "'generationConfig':{'responseMimeType':'application/json','maxOutputTokens':99}}",
	  "{'model':'M','max_tokens':99,'system':'Respond with a single JSON object and nothing "
	  "else: no prose, no code fence.','messages':[{'role':'user','content':[{'type':'text',"
	  "'text':'Go'},{'type':'text','text':'Now'}]},{'role':'assistant','content':[{'type':"
	  "'tool_use','id':'call_2_0','name':'f','input':{'q':'x'}}]},{'role':'user','content':"
	  "[{'type':'tool_result','tool_use_id':'call_2_0','content':'{\\'ok\\':true}'}]}]}" },
};

static void test_mappings(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(mappings); i++) {
		const struct mapping *m = &mappings[i];
		struct dt_xrequest r;
		char in[16384], *out;

		snprintf(in, sizeof(in), "%s", J(m->in));
		parse_ok(m->from, in, &r);
		out = emit_ok(m->to, &r);
		assert_json_equal(out, J(m->want), m->name);
		free(out);
		dt_xreq_free(&r);
	}
}

/* ---- round trips -------------------------------------------------------- */

/* Requests holding only what all three shapes share. Call ids follow the
 * Gemini scheme so they survive a trip through Gemini too. */
static const struct { enum dt_family shape; const char *body; } shared[] = {
	{ O, "{'model':'gpt','messages':[{'role':'system','content':'Sys'},"
	     "{'role':'user','content':'Hi'},{'role':'assistant','content':'Ok.','tool_calls':["
	     "{'id':'call_1_1','type':'function','function':{'name':'f','arguments':'{\\'a\\':1}'}}]},"
	     "{'role':'tool','tool_call_id':'call_1_1','content':'{\\'r\\':2}'},"
	     "{'role':'user','content':[{'type':'text','text':'See'},{'type':'image_url',"
	     "'image_url':{'url':'data:image/png;base64,AAAA'}}]}],"
	     "'tools':[{'type':'function','function':{'name':'f','description':'F','parameters':"
	     "{'type':'object','properties':{'a':{'type':'integer'}}}}}],'tool_choice':'auto',"
	     "'max_completion_tokens':300,'temperature':0.5,'stop':['Z']}" },
	{ A, "{'model':'claude','max_tokens':300,'system':'Sys','messages':["
	     "{'role':'user','content':[{'type':'text','text':'Hi'}]},{'role':'assistant','content':"
	     "[{'type':'tool_use','id':'call_1_0','name':'f','input':{'a':1}}]},{'role':'user',"
	     "'content':[{'type':'tool_result','tool_use_id':'call_1_0','content':'done'}]}],"
	     "'tools':[{'name':'f','input_schema':{'type':'object'}}],'tool_choice':{'type':'any'},"
	     "'temperature':0.5,'top_p':0.9,'stop_sequences':['Z']}" },
	{ G, "{'systemInstruction':{'parts':[{'text':'Sys'}]},'contents':[{'role':'user','parts':"
	     "[{'text':'Hi'}]},{'role':'model','parts':[{'functionCall':{'name':'f','args':{'a':1}}}]},"
	     "{'role':'user','parts':[{'functionResponse':{'name':'f','response':{'r':2}}}]}],"
	     "'tools':[{'functionDeclarations':[{'name':'f','parametersJsonSchema':{'type':'object'}}]}],"
	     "'toolConfig':{'functionCallingConfig':{'mode':'NONE'}},'generationConfig':"
	     "{'maxOutputTokens':300,'temperature':0.5,'stopSequences':['Z']}}" },
};

/* A -> B -> A emits what A -> A emits, for every A and B. */
static void test_round_trips(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(shared); i++)
		for (enum dt_family via = O; via <= G; via++) {
			enum dt_family a = shared[i].shape;
			struct dt_xrequest direct, first, back;
			char *want, *mid, *got, what[64];

			parse_ok(a, J(shared[i].body), &direct);
			want = emit_ok(a, &direct);
			parse_ok(a, J(shared[i].body), &first);
			mid = emit_ok(via, &first);
			parse_ok(via, mid, &back);
			got = emit_ok(a, &back);
			snprintf(what, sizeof(what), "%s -> %s -> %s", family_names[a],
				 family_names[via], family_names[a]);
			assert_json_equal(got, want, what);
			free(want);
			free(mid);
			free(got);
			dt_xreq_free(&direct);
			dt_xreq_free(&first);
			dt_xreq_free(&back);
		}
}

/* ---- tool-call ids over two turns ---------------------------------------- */

/* The same history in each shape: two assistant turns, the first with two
 * parallel calls (w twice would be ambiguous by name: w and t), the
 * second with one; each answered. */
static const char *const two_turns[] = {
	[O] = "{'model':'gpt','messages':[{'role':'user','content':'Q'},"
	      "{'role':'assistant','tool_calls':["
	      "{'id':'ca','type':'function','function':{'name':'w','arguments':'{}'}},"
	      "{'id':'cb','type':'function','function':{'name':'t','arguments':'{}'}}]},"
	      "{'role':'tool','tool_call_id':'cb','content':'tb'},"
	      "{'role':'tool','tool_call_id':'ca','content':'wa'},"
	      "{'role':'assistant','tool_calls':["
	      "{'id':'cc','type':'function','function':{'name':'w','arguments':'{}'}}]},"
	      "{'role':'tool','tool_call_id':'cc','content':'wc'}]}",
	[A] = "{'model':'c','max_tokens':5,'messages':[{'role':'user','content':'Q'},"
	      "{'role':'assistant','content':[{'type':'tool_use','id':'ca','name':'w','input':{}},"
	      "{'type':'tool_use','id':'cb','name':'t','input':{}}]},"
	      "{'role':'user','content':[{'type':'tool_result','tool_use_id':'cb','content':'tb'},"
	      "{'type':'tool_result','tool_use_id':'ca','content':'wa'}]},"
	      "{'role':'assistant','content':[{'type':'tool_use','id':'cc','name':'w','input':{}}]},"
	      "{'role':'user','content':[{'type':'tool_result','tool_use_id':'cc','content':'wc'}]}]}",
	[G] = "{'contents':[{'role':'user','parts':[{'text':'Q'}]},"
	      "{'role':'model','parts':[{'functionCall':{'name':'w','args':{}}},"
	      "{'functionCall':{'name':'t','args':{}}}]},"
	      "{'role':'user','parts':[{'functionResponse':{'name':'t','response':{'result':'tb'}}},"
	      "{'functionResponse':{'name':'w','response':{'result':'wa'}}}]},"
	      "{'role':'model','parts':[{'functionCall':{'name':'w','args':{}}}]},"
	      "{'role':'user','parts':[{'functionResponse':{'name':'w','response':{'result':'wc'}}}]}]}",
};

/* Every result answers a call of the previous assistant message, by id,
 * and the call's name and the result's text are as in the history. */
static void assert_pairs(const struct dt_xrequest *r, const char *what)
{
	static const struct { const char *name, *text; } want[] = {
		{ "t", "tb" }, { "w", "wa" }, { "w", "wc" },
	};
	const struct dt_xmessage *last = NULL;
	size_t k = 0;

	for (size_t i = 0; i < r->n_messages; i++) {
		const struct dt_xmessage *m = &r->messages[i];

		if (m->role == DT_XROLE_ASSISTANT)
			last = m;
		for (size_t j = 0; m->role == DT_XROLE_TOOL && j < m->n_parts; j++, k++) {
			const struct dt_xpart *res = &m->parts[j];
			const struct dt_xpart *call = NULL;

			assert_non_null(last);
			for (size_t c = 0; c < last->n_parts; c++)
				if (last->parts[c].type == DT_XPART_TOOL_CALL &&
				    strcmp(last->parts[c].id, res->id) == 0)
					call = &last->parts[c];
			if (!call)
				fail_msg("%s: result %s answers no call", what, res->id);
			assert_true(k < ARRAY_LEN(want));
			assert_string_equal(call->name, want[k].name);
			assert_string_equal(res->text, want[k].text);
		}
	}
	assert_int_equal(k, ARRAY_LEN(want));
}

static void test_tool_ids_two_turns(void **state)
{
	(void)state;
	for (enum dt_family from = O; from <= G; from++)
		for (enum dt_family to = O; to <= G; to++) {
			struct dt_xrequest r, back, again;
			char *out, *out2, what[64];

			snprintf(what, sizeof(what), "%s -> %s", family_names[from], family_names[to]);
			parse_ok(from, J(two_turns[from]), &r);
			assert_pairs(&r, what);
			out = emit_ok(to, &r);
			parse_ok(to, out, &back);
			assert_pairs(&back, what);
			/* the same history gives the same ids */
			parse_ok(to, out, &again);
			out2 = emit_ok(O, &again);
			free(out);
			out = emit_ok(O, &back);
			assert_string_equal(out, out2);
			free(out);
			free(out2);
			dt_xreq_free(&r);
			dt_xreq_free(&back);
			dt_xreq_free(&again);
		}
}

/* ---- refused inputs -------------------------------------------------------- */

struct bad {
	enum dt_family shape;
	const char *body, *fragment;
};

static const struct bad bad_inputs[] = {
	{ O, "{'model':'m','messages':[", "malformed JSON at byte 25: unexpected end of input" },
	{ O, "{'model':'m','messages':[]} x", "text after the JSON value" },
	{ O, "[1,2]", "the body must be a JSON object, not an array" },
	{ O, "", "malformed JSON at byte 0" },
	{ O, "{'model':'m','messages':[{'role':'user','content':'a\\u0000b'}]}", "NUL" },
	{ O, "{'model':'m','messages':[{'role':'user','content':'a\x01b'}]}",
	  "control character in string" },
	{ O, "{'model':'m','messages':[{'role':'user','content':'\\ud800'}]}", "invalid escape" },
	{ O, "{'model':'m','messages':[{'role':'user','content':'\xc3\x28'}]}", "invalid UTF-8" },
	{ O, "{'model':'m','messages':[{'role':'user','content':'x'}],'temperature':1e999}",
	  "number out of range" },
	{ O, "{'model':'m','messages':[{'role':'user','content':'x'}],'top_p':01}",
	  "malformed JSON" },
	{ O, "{'messages':[{'role':'user','content':'x'}]}", "model: required, missing" },
	{ O, "{'model':'m'}", "messages: required, missing" },
	{ O, "{'model':7,'messages':[]}", "model: must be a string, not a number" },
	{ O, "{'model':'m','messages':{}}", "messages: must be an array, not an object" },
	{ O, "{'model':'m','messages':[{'role':'user','content':'x'},{'role':'user','content':'y'},"
	     "{'role':'foo','content':'z'}]}", "messages[2].role: unknown role \"foo\"" },
	{ O, "{'model':'m','messages':[3]}", "messages[0]: a message must be an object" },
	{ O, "{'model':'m','messages':[{'content':'x'}]}", "messages[0].role: required, missing" },
	{ O, "{'model':'m','messages':[{'role':'user'}]}", "messages[0].content: required, missing" },
	{ O, "{'model':'m','messages':[{'role':'user','content':[{'type':'input_audio',"
	     "'input_audio':{}}]}]}", "messages[0].content[0].type: content part \"input_audio\" is "
				       "not supported" },
	{ O, "{'model':'m','messages':[{'role':'user','content':[{'type':'image_url','image_url':"
	     "{'url':'ftp://x/y.png'}}]}]}",
	  "messages[0].content[0].image_url.url: only http(s) and data: URLs are accepted" },
	{ O, "{'model':'m','messages':[{'role':'user','content':[{'type':'image_url','image_url':"
	     "{'url':'data:image/png,xyz'}}]}]}", "a data: URL must read" },
	{ O, "{'model':'m','messages':[{'role':'assistant','tool_calls':[{'type':'function',"
	     "'function':{'name':'f'}}]}]}", "messages[0].tool_calls[0].id: required, missing" },
	{ O, "{'model':'m','messages':[{'role':'tool','content':'r'}]}",
	  "messages[0].tool_call_id: required, missing" },
	{ O, "{'model':'m','messages':[{'role':'system','content':[{'type':'image_url'}]}]}",
	  "messages[0].content[0].type: only text parts are accepted here" },
	{ O, "{'model':'m','messages':[],'temperature':3}", "temperature: 3 is out of range [0, 2]" },
	{ O, "{'model':'m','messages':[],'max_tokens':1.5}", "max_tokens: must be an integer" },
	{ O, "{'model':'m','messages':[],'max_tokens':0}", "max_tokens: 0 is out of range" },
	{ O, "{'model':'m','messages':[],'n':'2'}", "n: must be a number, not a string" },
	{ O, "{'model':'m','messages':[],'stop':['a',1]}", "stop[1]: must be a string, not a number" },
	{ O, "{'model':'m','messages':[],'tool_choice':'maybe'}",
	  "tool_choice: unknown value \"maybe\"" },
	{ O, "{'model':'m','messages':[],'tools':[{'type':'web_search'}]}",
	  "tools[0].type: tool type \"web_search\" is not supported" },
	{ O, "{'model':'m','messages':[],'response_format':{'type':'xml'}}",
	  "response_format.type: unknown format \"xml\"" },
	{ O, "{'model':'m','messages':[],'parallel_tool_calls':'yes'}",
	  "parallel_tool_calls: must be a boolean, not a string" },
	{ A, "{'model':'c','messages':[{'role':'user','content':'x'}]}",
	  "max_tokens: required, missing" },
	{ A, "{'model':'c','max_tokens':5,'messages':[{'role':'system','content':'x'}]}",
	  "messages[0].role: unknown role \"system\"" },
	{ A, "{'model':'c','max_tokens':5,'messages':[{'role':'user','content':[{'type':'document',"
	     "'source':{}}]}]}", "messages[0].content[0].type: content block \"document\" is not "
				 "supported in user messages" },
	{ A, "{'model':'c','max_tokens':5,'messages':[{'role':'user','content':[{'type':'image',"
	     "'source':{'type':'file','file_id':'f'}}]}]}",
	  "messages[0].content[0].source.type: image source \"file\" is not supported" },
	{ A, "{'model':'c','max_tokens':5,'messages':[{'role':'assistant','content':[{'type':"
	     "'tool_use','id':'t','name':'f','input':'{}'}]}]}",
	  "messages[0].content[0].input: must be an object, not a string" },
	{ A, "{'model':'c','max_tokens':5,'messages':[{'role':'user','content':[{'type':"
	     "'tool_result','tool_use_id':'t','content':[{'type':'image'}]}]}]}",
	  "messages[0].content[0].content[0].type: only text blocks are accepted here" },
	{ A, "{'model':'c','max_tokens':5,'messages':[],'tools':[{'type':'web_search_20250305',"
	     "'name':'web_search'}]}", "tools[0].type: server tool \"web_search_20250305\" cannot be "
				      "translated" },
	{ A, "{'model':'c','max_tokens':5,'messages':[],'temperature':1.5}",
	  "temperature: 1.5 is out of range [0, 1]" },
	{ A, "{'model':'c','max_tokens':5,'messages':[],'tool_choice':{'type':'tool'}}",
	  "tool_choice.name: required, missing" },
	{ G, "{'contents':[{'role':'system','parts':[{'text':'x'}]}]}",
	  "contents[0].role: unknown role \"system\"" },
	{ G, "{}", "contents: required, missing" },
	{ G, "{'contents':[{'role':'user','parts':[{'executableCode':{}}]}]}",
	  "contents[0].parts[0]: a part must hold text, inlineData" },
	{ G, "{'contents':[{'role':'user','parts':[{'inlineData':{'mimeType':'audio/mp3','data':"
	     "'x'}}]}]}", "contents[0].parts[0].inlineData.mimeType: only images can be translated" },
	{ G, "{'contents':[{'role':'user','parts':[{'functionResponse':{'name':'f','response':"
	     "{}}}]}]}", "contents[0].parts[0].functionResponse: no call to \"f\" in the previous "
			 "model turn" },
	{ G, "{'contents':[{'role':'model','parts':[{'functionCall':{'name':'f'}}]},{'role':'user',"
	     "'parts':[{'functionResponse':{'name':'f','response':{}}},{'functionResponse':"
	     "{'name':'f','response':{}}}]}]}", "contents[1].parts[1].functionResponse: no call" },
	{ G, "{'contents':[{'role':'user','parts':[{'functionCall':{'name':'f'}}]}]}",
	  "contents[0].parts[0]: functionCall is not accepted in a user turn" },
	{ G, "{'contents':[],'tools':[{'googleSearch':{}}]}",
	  "tools[0]: only functionDeclarations can be translated" },
	{ G, "{'contents':[],'toolConfig':{'functionCallingConfig':{'mode':'ANY',"
	     "'allowedFunctionNames':['a','b']}}}",
	  "toolConfig.functionCallingConfig.allowedFunctionNames: more than one name" },
	{ G, "{'contents':[],'toolConfig':{'functionCallingConfig':{'mode':'SOMETIMES'}}}",
	  "mode: unknown value \"SOMETIMES\"" },
	{ G, "{'contents':[],'generationConfig':{'responseMimeType':'text/x.enum'}}",
	  "generationConfig.responseMimeType: \"text/x.enum\" cannot be translated" },
	{ G, "{'contents':[],'generationConfig':{'candidateCount':0}}",
	  "generationConfig.candidateCount: 0 is out of range" },
};

static void test_bad_inputs(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad_inputs); i++) {
		const struct bad *b = &bad_inputs[i];
		struct dt_xrequest r;
		const char *body = J(b->body);
		char err[256];

		if (dt_xreq_parse(b->shape, body, strlen(body), NULL, false, &r, err, sizeof(err)) == 0)
			fail_msg("accepted: %s", body);
		if (!strstr(err, b->fragment))
			fail_msg("%s\n error %s\n want  %s", body, err, b->fragment);
		assert_int_equal(r.n_messages, 0);
		assert_null(r.arena.head);
	}
}

/* Nesting, counts and sizes past the limits are refused, never crash. */
static void test_limits(void **state)
{
	size_t n = 200000;
	char *body = malloc(n * 16 + 64), *p = body;
	struct dt_xrequest r;
	char err[256];

	(void)state;
	for (size_t i = 0; i < 129; i++)
		*p++ = '[';
	assert_int_equal(dt_xreq_parse(O, body, 129, NULL, false, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nested too deep"));

	p = body + sprintf(body, "{\"model\":\"m\",\"messages\":[");
	for (size_t i = 0; i < 10001; i++)
		p += sprintf(p, "%s{\"role\":\"user\",\"content\":\"x\"}", i ? "," : "");
	p += sprintf(p, "]}");
	assert_int_equal(dt_xreq_parse(O, body, (size_t)(p - body), NULL, false, &r, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "messages: 10001 items, at most 10000 accepted"));

	p = body + sprintf(body, "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[");
	for (size_t i = 0; i < 6; i++) {
		p += sprintf(p, "%s{\"role\":\"user\",\"content\":[", i ? "," : "");
		for (size_t k = 0; k < 9000; k++)
			p += sprintf(p, "%s{\"type\":\"text\",\"text\":\"x\"}", k ? "," : "");
		p += sprintf(p, "]}");
	}
	p += sprintf(p, "]}");
	assert_int_equal(dt_xreq_parse(A, body, (size_t)(p - body), NULL, false, &r, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 50000 parts in all"));

	p = body + sprintf(body, "[");
	for (size_t i = 0; i < 1000001; i++)
		p += sprintf(p, "%s0", i ? "," : "");
	p += sprintf(p, "]");
	assert_int_equal(dt_xreq_parse(O, body, (size_t)(p - body), NULL, false, &r, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "too many values"));
	free(body);
}

/* ---- refused outputs ------------------------------------------------------- */

struct bad_emit {
	enum dt_family from, to;
	const char *body, *fragment;
};

static const struct bad_emit bad_emits[] = {
	{ O, A, "{'model':'m','messages':[{'role':'user','content':'x'}],'n':3}",
	  "n: Anthropic answers with one candidate only, 3 were asked" },
	{ O, G, "{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
		"'image_url':{'url':'https://x.test/a.png'}}]}]}",
	  "Gemini does not fetch image URLs (https://x.test/a.png)" },
	{ G, O, "{'contents':[{'parts':[{'fileData':{'mimeType':'image/png','fileUri':"
		"'https://generativelanguage.googleapis.com/v1beta/files/f'}}]}]}",
	  "is a Gemini file: only Gemini can read it" },
	{ G, A, "{'contents':[{'parts':[{'fileData':{'fileUri':"
		"'https://generativelanguage.googleapis.com/v1beta/files/f'}}]}]}",
	  "is a Gemini file" },
	{ O, A, "{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
		"'image_url':{'url':'data:image/tiff;base64,AA'}}]}]}",
	  "Anthropic does not take images of type image/tiff" },
	{ O, A, "{'model':'m','messages':[{'role':'assistant','tool_calls':[{'id':'c','type':"
		"'function','function':{'name':'f','arguments':'{oops'}}]}]}",
	  "tool call c (\"f\"): arguments are not a JSON object" },
	{ O, G, "{'model':'m','messages':[{'role':'assistant','tool_calls':[{'id':'c','type':"
		"'function','function':{'name':'f','arguments':'[1]'}}]}]}",
	  "arguments are not a JSON object" },
	{ O, G, "{'model':'m','messages':[{'role':'tool','tool_call_id':'nowhere','content':'r'}]}",
	  "tool result nowhere answers no earlier tool call" },
	{ O, G, "{'model':'m','messages':[],'seed':5000000000}",
	  "seed: Gemini takes a 32-bit seed" },
	{ G, O, "{'contents':[{'role':'model','parts':[{'inlineData':{'mimeType':'image/png',"
		"'data':'AA'}}]}]}", "OpenAI assistant messages cannot hold images" },
	{ G, A, "{'contents':[{'role':'model','parts':[{'inlineData':{'mimeType':'image/png',"
		"'data':'AA'}}]}]}", "Anthropic assistant messages cannot hold images" },
};

static void test_bad_emits(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad_emits); i++) {
		const struct bad_emit *b = &bad_emits[i];
		struct dt_xrequest r;
		char err[256];
		size_t len;

		parse_ok(b->from, J(b->body), &r);
		if (dt_xreq_emit(b->to, &r, "M", &len, err, sizeof(err)))
			fail_msg("emitted: %s", J(b->body));
		if (!strstr(err, b->fragment))
			fail_msg("%s\n error %s\n want  %s", J(b->body), err, b->fragment);
		dt_xreq_free(&r);
	}
}

/* ---- the neutral form itself ------------------------------------------------ */

static void test_parsed_fields(void **state)
{
	struct dt_xrequest r;

	(void)state;
	parse_ok(O, J("{'model':'gpt','messages':[{'role':'user','content':'caf\\u00e9 \\ud83d\\ude00 "
		      "\\'q\\' \\\\ \\n'}],'stream':true,'stream_options':{'include_usage':true},"
		      "'tools':[{'type':'function','function':{'name':'f','parameters':"
		      "{ 'type' : 'object' }}}]}"), &r);
	assert_int_equal(r.shape, O);
	assert_string_equal(r.model, "gpt");
	assert_true(r.stream);
	assert_true(r.stream_usage);
	assert_int_equal(r.max_tokens, -1);
	assert_int_equal(r.parallel_tool_calls, -1);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.messages[0].parts[0].text, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ \n");
	assert_string_equal(r.tools[0].parameters, "{ \"type\" : \"object\" }");
	dt_xreq_free(&r);

	/* Gemini: model and streaming from the URL */
	assert_int_equal(dt_xreq_parse(G, "{\"contents\":[]}", 15, "gemini-2.5-flash", true, &r,
				       (char[64]){ 0 }, 64), 0);
	assert_string_equal(r.model, "gemini-2.5-flash");
	assert_true(r.stream);
	dt_xreq_free(&r);
}

/* Control characters and quotes are escaped; the model is the caller's. */
static void test_emitted_escapes(void **state)
{
	struct dt_xrequest r;
	char *out;

	(void)state;
	parse_ok(A, J("{'model':'c','max_tokens':1,'messages':[{'role':'user','content':"
		      "'a\\u0001\\t\\'\\u2028'}]}"), &r);
	out = emit_ok(O, &r);
	assert_string_equal(out, "{\"model\":\"M\",\"messages\":[{\"role\":\"user\",\"content\":"
			    "\"a\\u0001\\t\\\"\xe2\x80\xa8\"}],\"max_completion_tokens\":1}");
	free(out);
	dt_xreq_free(&r);
}

/* ---- the arena -------------------------------------------------------------- */

static void test_arena(void **state)
{
	struct dt_arena a = { 0 };
	char *s, *big;
	int *ints;

	(void)state;
	ints = dt_arena_alloc(&a, 10 * sizeof(*ints));
	assert_non_null(ints);
	for (int i = 0; i < 10; i++)
		assert_int_equal(ints[i], 0);
	assert_int_equal((uintptr_t)ints % _Alignof(max_align_t), 0);
	s = dt_arena_alloc(&a, 3);
	assert_int_equal((uintptr_t)s % _Alignof(max_align_t), 0);
	big = dt_arena_alloc(&a, 100000); /* past a block */
	assert_non_null(big);
	memset(big, 'x', 100000);
	assert_string_equal(dt_arena_strndup(&a, "hello", 4), "hell");
	assert_string_equal(dt_arena_strdup(&a, ""), "");
	assert_string_equal(dt_arena_printf(&a, "%s-%d", "a", 42), "a-42");
	assert_null(dt_arena_alloc(&a, SIZE_MAX - 8));
	assert_null(dt_arena_strndup(&a, "x", SIZE_MAX));
	for (int i = 0; i < 1000; i++) /* many blocks */
		assert_non_null(dt_arena_alloc(&a, 100));
	dt_arena_free(&a);
	assert_null(a.head);
	assert_non_null(dt_arena_alloc(&a, 1)); /* usable again */
	dt_arena_free(&a);
	dt_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mappings),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_tool_ids_two_turns),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_bad_emits),
		cmocka_unit_test(test_parsed_fields),
		cmocka_unit_test(test_emitted_escapes),
		cmocka_unit_test(test_arena),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
