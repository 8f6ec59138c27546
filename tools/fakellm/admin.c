/* SPDX-License-Identifier: MIT */
/*
 * The admin API, plain HTTP on --admin: set and read the fault, read and
 * reset the statistics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakellm.h"

static void admin_error(struct fl_conn *c, int status, const char *message)
{
	fl_http_json(c, status, json_pack("{s:s}", "error", message), NULL);
}

void fl_admin_reject(struct fl_conn *c, int status)
{
	admin_error(c, status, fl_http_reason(status));
}

static void set_fault(struct fl_conn *c)
{
	struct fl_server *srv = c->srv;
	json_t *body = json_loadb(c->req.body, c->req.body_len, 0, NULL);
	const char *why = "body is not valid JSON";
	struct fl_fault fault;
	json_t *shown;

	if (!body || !fl_fault_from_json(body, &fault, &why)) {
		json_decref(body);
		admin_error(c, 400, why);
		return;
	}
	json_decref(body);
	if (fl_server_set_fault(srv, &fault) != 0) {
		admin_error(c, 500, "the listening sockets cannot be bound again (see fakellm's log)");
		return;
	}
	shown = fl_fault_to_json(&srv->fault);
	if (!srv->quiet) {
		char *text = json_dumps(shown, JSON_COMPACT);

		fprintf(stderr, "fakellm: %s: fault %s\n", srv->name, text ? text : "?");
		free(text);
	}
	fl_http_json(c, 200, shown, NULL);
}

void fl_admin_handle(struct fl_conn *c)
{
	struct fl_server *srv = c->srv;
	const struct fl_request *req = &c->req;
	enum http_method method = c->parser.method;

	if (fl_request_path_is(req, "", "/fault", NULL)) {
		if (method == HTTP_POST)
			set_fault(c);
		else if (method == HTTP_GET)
			fl_http_json(c, 200, fl_fault_to_json(&srv->fault), NULL);
		else
			fl_admin_reject(c, 405);
	} else if (fl_request_path_is(req, "", "/stats", NULL)) {
		if (method == HTTP_GET)
			fl_http_json(c, 200, fl_stats_to_json(&srv->stats, &srv->fault), NULL);
		else
			fl_admin_reject(c, 405);
	} else if (fl_request_path_is(req, "", "/reset-stats", NULL)) {
		if (method == HTTP_POST) {
			memset(&srv->stats, 0, sizeof(srv->stats));
			fl_http_json(c, 200, json_pack("{s:b}", "ok", 1), NULL);
		} else {
			fl_admin_reject(c, 405);
		}
	} else {
		fl_admin_reject(c, 404);
	}
}
