/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/proxy.h -- the proxy module's shared state and the functions
 * its files call in each other. Threads: everything here runs on the loop
 * thread unless its comment says otherwise; p->lock guards what the API
 * handlers (HTTP worker threads) read or change: the index (hash, LRU,
 * sizes), the per-backend counters and the list of objects in flight.
 */
#ifndef RELENGD_PROXY_PROXY_H
#define RELENGD_PROXY_PROXY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/module.h"
#include "modules/proxy/fresh.h"
#include "modules/proxy/http_req.h"

struct evconnlistener;
struct bufferevent;
struct evbuffer_file_segment;
struct proxy_conn;

/* Module configuration (main section). */
struct proxy_conf {
    const char *listen;
    const char *cache_dir;
    uint64_t max_cache_size;
    uint64_t max_object_size;
    uint64_t connect_timeout_ms;
    uint64_t upstream_idle_timeout_ms;
    uint64_t client_timeout_ms;
    uint64_t max_header_size;
    bool serve_stale;
    uint64_t stale_if_error_ms;
    bool forward;
    const char *host_suffix;
    uint64_t flush_interval_ms;
    int64_t max_clients;
};

/* One [backend.NAME] section. */
struct proxy_backend_conf {
    const char *url;
    uint64_t default_ttl_ms;
    bool immutable;
    const char *content_digest; /* "", "sha256" or "sha512" */
    const char *ca_file;
};

/* Counters per backend; guarded by p->lock. */
struct proxy_counts {
    uint64_t requests, hits, misses, coalesced, stale, revalidated, errors, uncacheable;
    uint64_t bytes_served;   /* body bytes sent to clients */
    uint64_t bytes_hit;      /* of which from a complete cached object (HIT, STALE) */
    uint64_t bytes_upstream; /* body bytes received from the origin */
    uint64_t fetches;        /* upstream requests started */
};

struct proxy_backend {
    char name[64];
    struct proxy_backend_conf conf;
    char base[1024]; /* scheme://host:port + path prefix, no trailing '/' */
    char scheme[8];
    char host[256];
    int port;
    size_t prefix_off;  /* where the path prefix starts in base */
    const char *prefix; /* into base: the path prefix ("" for none) */
    size_t digest_hex;  /* 0, 64 (sha256) or 128 (sha512) */
    struct proxy_counts c;
    struct proxy_counts c_saved; /* counts already in proxy_totals (flush) */
    struct rd_metric *m_hit, *m_miss, *m_coalesced, *m_stale, *m_error, *m_bytes_cache,
        *m_bytes_upstream, *m_bytes_served, *m_latency;
};

/* A cached, complete object. Refcounted on the loop thread only; the index
   holds one reference while the entry is in it. */
struct proxy_entry {
    char *key;
    struct proxy_backend *be;
    char name[65]; /* file name: hex SHA-256 of the key */
    int64_t size;
    char sha256[65];
    int status;
    char *headers; /* stored response header lines "Name: value\r\n..." */
    char *etag, *last_modified;
    int64_t stored_ms, initial_age_ms, lifetime_ms, last_access_ms;
    int64_t hits;
    bool dirty;    /* last_access/hits not yet flushed */
    bool in_index; /* under p->lock */
    unsigned refs; /* loop thread */
    struct proxy_entry *hnext, *lru_prev, *lru_next;
    struct evbuffer_file_segment *seg; /* loop thread: the open file */
    char *mem;                         /* loop thread: a small body kept in memory */
    int64_t *mem_account;              /* where mem's size is counted */
};

/* An upstream fetch, shared by every client that wants its key (loop
   thread; `purged` and the list links under p->lock). The body goes to a
   temporary file that readers stream from while it grows. */
struct proxy_obj {
    struct proxy *p;
    struct proxy_backend *be;
    char *key, *url;
    struct proxy_entry *stale; /* the entry being revalidated, or NULL (a reference) */
    struct proxy_entry *serve; /* set when readers are to be served from an entry
                                  (304 revalidation, stale on error; a reference) */
    int fd;
    char *tmp_path;
    int64_t written; /* body bytes in the file */
    int64_t length;  /* Content-Length, -1 unknown */
    int status;
    bool headers_done, done, failed, cacheable, verified, revalidating, purged, stopped;
    bool direct; /* disk full: no file, bytes go straight to the one reader */
    bool paused; /* direct: curl paused until the reader drains */
    /* Verified and complete; a pool thread is fsyncing the file before it
       is renamed into place. Not done until then. */
    bool committing;
    int sync_err; /* fsync's errno on the pool thread, 0 when the file is on disk */
    char body_sha256[65];
    CURL *easy;    /* the transfer, until it is done */
    char *headers; /* header lines for clients, "Name: value\r\n"... */
    size_t headers_len, headers_cap;
    char *cc, *expires, *date, *age, *etag, *last_modified; /* captured upstream values */
    bool vary_star;
    int err_status;
    char err_code[32];
    char err_msg[256];
    void *sha256, *sha512;    /* EVP_MD_CTX */
    struct curl_slist *slist; /* request headers, alive as long as the transfer */
    struct proxy_conn *readers;
    size_t n_readers;
    unsigned refs; /* the transfer + each reader */
    int64_t started_ms;
    struct proxy_obj *next, *prev;
};

enum proxy_result { PROXY_R_HIT, PROXY_R_MISS, PROXY_R_COALESCED, PROXY_R_STALE, PROXY_R_ERROR };

/* A client connection (loop thread). */
enum proxy_conn_state { PC_READING, PC_WAITING, PC_STREAMING, PC_CLOSING };
struct proxy_conn {
    struct proxy *p;
    struct bufferevent *bev;
    struct event *kick;             /* runs the next step outside curl's callbacks */
    struct proxy_conn *next, *prev; /* p->conns */
    enum proxy_conn_state st;
    bool keep_alive, head_only, chunked, hdr_sent, has_range;
    int minor;
    struct proxy_range range;
    struct proxy_backend *be;
    struct proxy_obj *obj;
    struct proxy_conn *rnext, *rprev; /* obj->readers */
    const char *xcache;
    enum proxy_result result;
    int64_t off, end; /* next body byte to send; end exclusive, -1 until the object ends */
    int64_t started_ms;
};

struct proxy_stq; /* the store write queue (store.c) */

struct proxy {
    struct rd_host *h;
    struct proxy_conf conf;
    struct proxy_backend *backends;
    size_t n_backends;
    char *cache_dir; /* absolute */
    char *tmp_dir;   /* cache_dir/tmp */

    pthread_mutex_t lock;
    /* index (under lock) */
    struct proxy_entry **buckets;
    size_t n_buckets, n_entries;
    struct proxy_entry *lru_head, *lru_tail; /* head = most recently used */
    int64_t cache_bytes;
    /* in flight (under lock for listing; changed on the loop thread) */
    struct proxy_obj *objs;
    size_t n_objs;
    bool disk_full;
    struct proxy_entry *graveyard; /* purged entries whose index reference the loop drops */
    int64_t disk_full_ms;          /* when caching stopped; retried after a while */
    int64_t disk_full_avail;       /* free bytes then: caching resumes once this grows */

    struct proxy_stq *stq;

    /* listener (loop thread) */
    struct evconnlistener *listener;
    int port;
    struct proxy_conn *conns;
    int64_t n_conns;
    bool stopping;
    struct rd_timer *flush_timer;
    int64_t tmp_seq;
    int64_t mem_bytes; /* small bodies kept in memory (loop thread) */
    char date[30];     /* Date header value, for date_s */
    int64_t date_s;

    struct rd_metric *m_cache_bytes, *m_cache_objects, *m_inflight, *m_disk_full, *m_bad_requests,
        *m_evicted, *m_clients, *m_requests, *m_forbidden;
};

/* ------------------------------------------------------------- index.c */
/* All under p->lock (the caller holds it) unless noted. */
struct proxy_entry *proxy_index_get(struct proxy *p, const char *key);
/* Inserts e (taking the caller's reference), replacing and returning an entry
   with the same key (whose index reference the caller must drop with
   proxy_entry_unref on the loop thread), or NULL. */
struct proxy_entry *proxy_index_put(struct proxy *p, struct proxy_entry *e);
/* Removes e from the index; its reference now belongs to the caller. */
void proxy_index_remove(struct proxy *p, struct proxy_entry *e);
/* proxy_index_remove, and unlinks e's file (under the lock, so that a commit's
   rename never lands between the two). */
void proxy_index_drop(struct proxy *p, struct proxy_entry *e);
void proxy_index_touch(struct proxy *p, struct proxy_entry *e, int64_t now_ms);
int proxy_index_grow(struct proxy *p);
/* Entry life: new (one reference), ref, unref (loop thread; frees at 0). */
struct proxy_entry *proxy_entry_new(const char *key);
void proxy_entry_unref(struct proxy_entry *e);
/* The path of e's file into out. */
void proxy_entry_path(const struct proxy *p, const struct proxy_entry *e, char *out, size_t n);
/* Loop thread, takes the lock: evicts least recently used entries until the
   cache is at most max_cache_size bytes; unlinks their files and queues
   their rows for deletion. */
void proxy_evict(struct proxy *p);
/* Hex SHA-256 of s into out[65] (lib/hash). RD_OK, or RD_ENOMEM and out
   untouched. */
int proxy_sha256_hex(const char *s, char out[65]);

/* ------------------------------------------------------------- store.c */
int proxy_store_migrate(struct proxy *p);
/* Start: loads the index, removes temporary files, reconciles rows with
   files (a row without its file, or a file of the wrong size, is dropped; a
   file without a row is removed). */
int proxy_store_load(struct proxy *p);
int proxy_stq_new(struct proxy *p);
void proxy_stq_free(struct proxy *p);
/* Queue an upsert of e's row / a delete of key / a flush of the counters
   (any thread; cheap). The queue is written in order by one work item at a
   time (rd_submit); proxy_stq_kick starts it when idle (loop thread). */
int proxy_stq_upsert(struct proxy *p, const struct proxy_entry *e);
int proxy_stq_delete(struct proxy *p, const char *key);
int proxy_stq_touch(struct proxy *p, const char *key, int64_t last_access_ms, int64_t hits);
int proxy_stq_totals(struct proxy *p);
void proxy_stq_kick(struct proxy *p);
/* Whether the queue is idle and empty (tests). */
bool proxy_stq_idle(struct proxy *p);

/* ------------------------------------------------------------ server.c */
int proxy_server_start(struct proxy *p);
/* Resolves a request target (origin-form, with the Host header for
   host_suffix routing, or an absolute URI for forward mode) to its backend,
   cache key and upstream URL (url may be NULL). RD_OK, or an error with
   *status (400, 403, 404, 414), *code and msg set. Any thread (reads the
   configuration only). */
int proxy_resolve(struct proxy *p, const char *target, size_t target_len, const char *host,
                  size_t host_len, struct proxy_backend **be, char *key, size_t key_size, char *url,
                  size_t url_size, int *status, const char **code, char *msg, size_t msg_size);
void proxy_server_stop(struct proxy *p);

/* ---------------------------------------------------------- upstream.c */
struct proxy_obj *proxy_obj_find(struct proxy *p, const char *key);
/* Starts a fetch of key (url) for backend be; stale (may be NULL, a
   reference is taken) is the entry to revalidate or fall back to. RD_OK
   with *out, or an error (the fetch could not start). */
int proxy_obj_start(struct proxy *p, struct proxy_backend *be, const char *key, const char *url,
                    struct proxy_entry *stale, struct proxy_obj **out);
/* An extra reference (a file segment borrowing the object's descriptor). */
void proxy_obj_hold(struct proxy_obj *o);
void proxy_obj_release(struct proxy_obj *o);
void proxy_obj_attach(struct proxy_obj *o, struct proxy_conn *c);
void proxy_obj_detach(struct proxy_obj *o, struct proxy_conn *c);
/* Aborts every fetch (stop). */
void proxy_obj_abort_all(struct proxy *p);
/* JSON of objects in flight (lock held). */
json_t *proxy_obj_list_json(struct proxy *p);
/* Direct mode: body bytes for reader c (server.c). */
void proxy_conn_push(struct proxy_conn *c, const char *data, size_t len);
/* Direct mode: the reader drained; let curl go on (not from curl callbacks). */
void proxy_obj_resume(struct proxy_obj *o);

/* Called by upstream.c on the loop thread: the object has news for reader c
   (headers, bytes, end, failure). */
void proxy_conn_wake(struct proxy_conn *c);

/* ---------------------------------------------------------------- api.c */
int proxy_api_start(struct proxy *p);
json_t *proxy_stats_json(struct proxy *p);

/* Counting (loop thread; takes the lock). */
void proxy_count_request(struct proxy *p, struct proxy_backend *be, enum proxy_result r);
void proxy_count_bytes(struct proxy *p, struct proxy_backend *be, uint64_t served, bool from_cache);
void proxy_count_upstream(struct proxy *p, struct proxy_backend *be, uint64_t bytes);
/* Free bytes for us on the cache's file system, -1 if unknown. */
int64_t proxy_disk_avail(const struct proxy *p);

#endif
