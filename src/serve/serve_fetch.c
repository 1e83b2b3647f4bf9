/* The service's FHIR client on libcurl's multi interface; see serve_fetch.h. */
#include "serve/serve_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "util/progress.h"

int serve_fetch_global_init(cf_err *err) {
    static int done;
    if (done) return CF_OK;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cf_fail(err, CF_EINTERNAL, "libcurl failed to initialise");
    done = 1;
    return CF_OK;
}

static size_t base_len(const char *s) {
    size_t n = strlen(s);
    while (n && s[n - 1] == '/') n--;
    return n;
}

int serve_fetch_allowed(const char *server, const char *const *servers, size_t n) {
    if (!server) return 0;
    size_t sl = base_len(server);
    for (size_t i = 0; i < n; i++)
        if (base_len(servers[i]) == sl && !strncmp(servers[i], server, sl)) return 1;
    return 0;
}

int serve_fetch_same_server(const char *server, const char *url) {
    size_t sl = base_len(server);
    return !strncmp(url, server, sl) && (url[sl] == '/' || url[sl] == '?') &&
           !strstr(url + sl, "/../") && !strpbrk(url, " \r\n\t");
}

int serve_fetch_token_ok(const char *t) {
    size_t n = strlen(t);
    if (!n || n > 4096) return 0;
    for (; *t; t++)
        if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 0x7f) return 0;
    return 1;
}

typedef struct {
    serve_fetch_item *it;
    CURL *h;
    size_t cap;
    size_t *budget;
    int over;
} job;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud) {
    job *j = ud;
    size_t n = size * nmemb;
    if (n > *j->budget) {
        j->over = 1;
        return 0; /* aborts the transfer */
    }
    if (j->it->len + n + 1 > j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 16384;
        while (nc < j->it->len + n + 1) nc *= 2;
        char *t = realloc(j->it->body, nc);
        if (!t) return 0;
        j->it->body = t;
        j->cap = nc;
    }
    memcpy(j->it->body + j->it->len, p, n);
    j->it->len += n;
    j->it->body[j->it->len] = '\0';
    *j->budget -= n;
    return n;
}

int serve_fetch_run(const serve_fetch_opts *o, serve_fetch_item *items, size_t n, cf_err *err) {
    for (size_t i = 0; i < n; i++) {
        items[i].status = 0;
        items[i].body = NULL;
        items[i].len = 0;
    }
    if (!n) return CF_OK;
    int rc = CF_OK;
    CURLM *m = curl_multi_init();
    job *jobs = calloc(n, sizeof *jobs);
    struct curl_slist *hdr = NULL;
    char auth[4200];
    if (!m || !jobs) {
        rc = cf_fail(err, CF_EINTERNAL, "the FHIR client could not start (out of memory)");
        goto out;
    }
    hdr = curl_slist_append(hdr, "Accept: application/fhir+json");
    if (o->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
        struct curl_slist *t = curl_slist_append(hdr, auth);
        memset(auth, 0, sizeof auth); /* libcurl keeps its own copy */
        if (!t) goto oom;
        hdr = t;
    }
    if (!hdr) goto oom;
    double left = o->deadline_s - now_seconds();
    if (left <= 0.001) goto out; /* no time: every item stays status 0 */
    for (size_t i = 0; i < n; i++) {
        job *j = &jobs[i];
        j->it = &items[i];
        j->budget = o->budget;
        if (!(j->h = curl_easy_init())) goto oom;
        CURL *h = j->h;
        curl_easy_setopt(h, CURLOPT_URL, items[i].url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, j);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left * 1000) + 1);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip when the server offers it */
        if (o->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
        curl_easy_setopt(h, CURLOPT_PRIVATE, j);
        if (curl_multi_add_handle(m, h) != CURLM_OK) goto oom;
    }
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) break;
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q))) {
            if (msg->msg != CURLMSG_DONE) continue;
            job *j = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (j) j->it->status = msg->data.result == CURLE_OK && !j->over ? (int)code : 0;
        }
        if (!running) break;
        double ms = (o->deadline_s - now_seconds()) * 1000;
        if (ms <= 0) break;
        curl_multi_poll(m, NULL, 0, ms > 100 ? 100 : (int)ms + 1, NULL);
    }
    goto out;
oom:
    rc = cf_fail(err, CF_EINTERNAL, "the FHIR client could not start (out of memory)");
out:
    if (jobs)
        for (size_t i = 0; i < n; i++)
            if (jobs[i].h) {
                if (m) curl_multi_remove_handle(m, jobs[i].h);
                curl_easy_cleanup(jobs[i].h);
            }
    /* an item that did not finish keeps status 0; its partial body is dropped */
    for (size_t i = 0; i < n; i++)
        if (items[i].status != 200 && items[i].body) {
            free(items[i].body);
            items[i].body = NULL;
            items[i].len = 0;
        }
    free(jobs);
    curl_slist_free_all(hdr);
    if (m) curl_multi_cleanup(m);
    return rc;
}

void serve_fetch_free(serve_fetch_item *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(items[i].body);
        items[i].body = NULL;
    }
}
