/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/logstore.c -- where run logs live: in the store, as
 * chunks (dispatch_log_chunks, keyed by their byte offset) while the run
 * is live, then packed into one blob (dispatch_logs_packed) once it has
 * resolved: xz-compressed, or as it is when it is too small for xz to pay
 * (an xz encoder costs more to set up than a few KiB of text save). dispatch_runs.log_size is the
 * log's size, changed in the same transaction as the chunk that grows it, so an append is
 * idempotent (logchunk.c decides what of a chunk is new) and a crash can never leave half a chunk.
 * Keeping logs out of the file system also spares an inode per run, which was the biggest cost of a
 * short task.
 *
 * Threads: appends run in the caller's (group-committed) write
 * transaction, reads in a read transaction on HTTP threads, compression on
 * pool threads.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <lzma.h>

#include "core/module.h"
#include "modules/dispatch/dispatch.h"
#include "modules/dispatch/logchunk.h"
#include "modules/dispatch/sql.h"

#define XZ_PRESET 1      /* fast, 1 MiB dictionary; logs compress well anyway */
#define XZ_MIN_SIZE 8192 /* smaller logs are packed as they are */

int dispatch_log_append_tx(struct rd_tx *tx, void *arg)
{
    struct dispatch_log_append *a = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    uint64_t have;
    int rc;

    /* Outputs first: a failed group commit runs this again (batch.c). */
    a->notfound = false;
    a->state[0] = '\0';
    memset(&a->plan, 0, sizeof(a->plan));
    rc = dsql_prepare(
        db, &st, "SELECT state, log_size FROM dispatch_runs WHERE task_id = ?1 AND run_id = ?2",
        "sI", a->task_id, (int64_t)a->run_id);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        dsql_finalize(st);
        a->notfound = true;
        return RD_OK;
    }
    snprintf(a->state, sizeof(a->state), "%s", dsql_text(st, 0));
    have = (uint64_t)sqlite3_column_int64(st, 1);
    dsql_finalize(st);
    if (strcmp(a->state, "claimed") != 0)
        return RD_OK; /* the caller answers 409 */
    a->plan = dispatch_chunk_plan(have, a->offset, a->len, a->d->conf.max_log_size);
    if (a->plan.write_len == 0)
        return RD_OK;
    rc = dsql_prepare(db, &st,
                      "INSERT INTO dispatch_log_chunks (task_id, run_id, off, data)"
                      " VALUES (?1, ?2, ?3, ?4)",
                      "sIu", a->task_id, (int64_t)a->run_id, have);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_bind_blob64(st, 4, a->data + a->plan.skip, a->plan.write_len, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = RD_EIO;
    dsql_finalize(st);
    if (rc != RD_OK)
        return rc;
    return dsql_exec(db,
                     "UPDATE dispatch_runs SET log_size = ?3 WHERE task_id = ?1 AND run_id = ?2",
                     "sIu", a->task_id, (int64_t)a->run_id, a->plan.new_size);
}

/* The whole decompressed content of an xz blob, at most cap bytes. */
static int xz_decode(const void *in, size_t in_len, uint64_t cap, char **out, size_t *out_len)
{
    uint64_t memlimit = UINT64_MAX;
    size_t in_pos = 0, out_pos = 0, alloc = cap + 1;
    char *buf = malloc(alloc ? alloc : 1);
    lzma_ret ret;

    if (!buf)
        return RD_ENOMEM;
    ret = lzma_stream_buffer_decode(&memlimit, 0, NULL, in, &in_pos, in_len, (uint8_t *)buf,
                                    &out_pos, alloc);
    if (ret != LZMA_OK) {
        free(buf);
        return ret == LZMA_BUF_ERROR ? RD_ETOOBIG : RD_ECORRUPT;
    }
    *out = buf;
    *out_len = out_pos;
    return RD_OK;
}

int dispatch_log_read_tx(struct rd_tx *tx, void *arg)
{
    struct dispatch_log_read *q = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    char *all = NULL;
    size_t all_len = 0;
    int rc, step;

    free(q->buf);
    q->buf = NULL;
    q->n = 0;
    rc = dsql_prepare(
        db, &st, "SELECT state, log_size FROM dispatch_runs WHERE task_id = ?1 AND run_id = ?2",
        "sI", q->task_id, (int64_t)q->run_id);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        dsql_finalize(st);
        return RD_ENOTFOUND;
    }
    q->done =
        strcmp(dsql_text(st, 0), "resolved") == 0 || strcmp(dsql_text(st, 0), "cancelled") == 0;
    q->total = (uint64_t)sqlite3_column_int64(st, 1);
    dsql_finalize(st);
    if (q->offset >= q->total)
        return RD_OK;
    q->buf = malloc(q->total - q->offset < q->max ? (size_t)(q->total - q->offset) : q->max);
    if (!q->buf)
        return RD_ENOMEM;
    /* Compressed once resolved... */
    rc = dsql_prepare(db, &st,
                      "SELECT codec, data FROM dispatch_logs_packed WHERE task_id = ?1"
                      " AND run_id = ?2",
                      "sI", q->task_id, (int64_t)q->run_id);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (strcmp(dsql_text(st, 0), "xz") == 0) {
            rc = xz_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                           q->total, &all, &all_len);
        } else {
            all_len = (size_t)sqlite3_column_bytes(st, 1);
            all = malloc(all_len ? all_len : 1);
            rc = all ? RD_OK : RD_ENOMEM;
            if (all && all_len)
                memcpy(all, sqlite3_column_blob(st, 1), all_len);
        }
        dsql_finalize(st);
        if (rc != RD_OK)
            return rc;
        if (q->offset < all_len) {
            q->n = all_len - q->offset < q->max ? all_len - (size_t)q->offset : q->max;
            memcpy(q->buf, all + q->offset, q->n);
        }
        free(all);
        return RD_OK;
    }
    dsql_finalize(st);
    /* ... else the chunks that overlap [offset, offset + max). */
    rc = dsql_prepare(db, &st,
                      "SELECT off, data FROM dispatch_log_chunks WHERE task_id = ?1 AND run_id = ?2"
                      " AND off + length(data) > ?3 AND off < ?4 ORDER BY off",
                      "sIuu", q->task_id, (int64_t)q->run_id, q->offset,
                      q->offset + (uint64_t)q->max);
    if (rc != RD_OK)
        return rc;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t off = (uint64_t)sqlite3_column_int64(st, 0);
        const char *data = sqlite3_column_blob(st, 1);
        uint64_t len = (uint64_t)sqlite3_column_bytes(st, 1), from, to;

        /* the part of [off, off + len) inside [offset + n, offset + max) */
        from = off > q->offset + q->n ? off : q->offset + q->n;
        to = off + len < q->offset + q->max ? off + len : q->offset + q->max;
        if (from != q->offset + q->n || from >= to)
            continue; /* chunks are contiguous; a hole would be a bug: stop at it */
        memcpy(q->buf + q->n, data + (from - off), (size_t)(to - from));
        q->n += (size_t)(to - from);
    }
    dsql_finalize(st);
    return step == SQLITE_DONE ? RD_OK : RD_EIO;
}

/* ---------------------------------------------------------- compression */

struct packing {
    struct dispatch *d;
    char task_id[DISPATCH_NAME_MAX + 1];
    uint32_t run_id;
    uint64_t size;
    const char *codec; /* "xz" or "raw" */
    uint8_t *xz;       /* the packed bytes */
    size_t xz_len;
};

#define PACK_BATCH 64

struct pack_batch {
    struct dispatch *d;
    size_t n;
    struct packing p[PACK_BATCH];
};

/* Read transaction: the logs of up to PACK_BATCH resolved runs that still
   have chunks, each read whole and compressed. */
static int pack_read_tx(struct rd_tx *tx, void *arg)
{
    struct pack_batch *b = arg;
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < b->n; i++)
        free(b->p[i].xz);
    memset(b->p, 0, sizeof(b->p));
    b->n = 0;
    rc = dsql_prepare(rd_tx_db(tx), &st,
                      "SELECT DISTINCT c.task_id, c.run_id FROM dispatch_log_chunks c"
                      " JOIN dispatch_runs r ON r.task_id = c.task_id AND r.run_id = c.run_id"
                      " WHERE r.state IN ('resolved', 'cancelled') LIMIT ?1",
                      "i", PACK_BATCH);
    if (rc != RD_OK)
        return rc;
    while (n < PACK_BATCH && sqlite3_step(st) == SQLITE_ROW) {
        snprintf(b->p[n].task_id, sizeof(b->p[n].task_id), "%s", dsql_text(st, 0));
        b->p[n].run_id = (uint32_t)sqlite3_column_int64(st, 1);
        n++;
    }
    dsql_finalize(st);
    for (size_t i = 0; i < n; i++) {
        struct packing *p = &b->p[b->n];
        struct dispatch_log_read q = {.d = b->d, .max = b->d->conf.max_log_size};
        size_t cap;

        if (i != b->n)
            *p = b->p[i];
        q.task_id = p->task_id;
        q.run_id = p->run_id;
        rc = dispatch_log_read_tx(tx, &q);
        if (rc != RD_OK || q.n != q.total || q.total == 0) {
            free(q.buf);
            if (rc == RD_ENOMEM)
                return rc;
            continue; /* not readable whole: left as chunks */
        }
        if (q.n < XZ_MIN_SIZE) {
            p->codec = "raw";
            p->xz = (uint8_t *)q.buf; /* handed over */
            p->xz_len = q.n;
            p->size = q.total;
            b->n++;
            continue;
        }
        p->codec = "xz";
        cap = lzma_stream_buffer_bound(q.n);
        p->xz = malloc(cap);
        p->xz_len = 0;
        if (!p->xz ||
            lzma_easy_buffer_encode(XZ_PRESET, LZMA_CHECK_CRC64, NULL, (const uint8_t *)q.buf, q.n,
                                    p->xz, &p->xz_len, cap) != LZMA_OK) {
            free(q.buf);
            free(p->xz);
            p->xz = NULL;
            return RD_ENOMEM;
        }
        p->size = q.total;
        free(q.buf);
        b->n++;
    }
    return RD_OK;
}

/* Write transaction: stores each pack (if its log is unchanged) and drops
   its chunks. */
static int pack_store_tx(struct rd_tx *tx, void *arg)
{
    struct pack_batch *b = arg;
    sqlite3 *db = rd_tx_db(tx);

    for (size_t i = 0; i < b->n; i++) {
        struct packing *p = &b->p[i];
        sqlite3_stmt *st = NULL;
        bool same;
        int rc;

        rc = dsql_prepare(db, &st,
                          "SELECT log_size FROM dispatch_runs WHERE task_id = ?1 AND run_id = ?2"
                          " AND state IN ('resolved', 'cancelled')",
                          "sI", p->task_id, (int64_t)p->run_id);
        if (rc != RD_OK)
            return rc;
        same = sqlite3_step(st) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(st, 0) == p->size;
        dsql_finalize(st);
        if (!same)
            continue;
        rc = dsql_prepare(db, &st,
                          "INSERT OR IGNORE INTO dispatch_logs_packed (task_id, run_id, size,"
                          " codec, data) VALUES (?1, ?2, ?3, ?5, ?4)",
                          "sIu", p->task_id, (int64_t)p->run_id, p->size);
        if (rc != RD_OK)
            return rc;
        if (sqlite3_bind_blob64(st, 4, p->xz, p->xz_len, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 5, p->codec, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_DONE)
            rc = RD_EIO;
        dsql_finalize(st);
        if (rc == RD_OK)
            rc = dsql_exec(db, "DELETE FROM dispatch_log_chunks WHERE task_id = ?1 AND run_id = ?2",
                           "sI", p->task_id, (int64_t)p->run_id);
        if (rc != RD_OK)
            return rc;
    }
    return RD_OK;
}

size_t dispatch_log_compress_pending(struct dispatch *d)
{
    struct pack_batch *b = calloc(1, sizeof(*b));
    size_t done = 0;
    int rc = RD_OK;

    if (!b)
        return 0;
    b->d = d;
    /* Batch after batch while there is something to pack; a batch whose
       logs could not all be packed ends the loop (they stay as chunks). */
    while (!rd_stopping(d->h)) {
        rc = rd_store_read(d->h, pack_read_tx, b);
        if (rc != RD_OK || b->n == 0)
            break;
        rc = rd_store_write(d->h, pack_store_tx, b);
        if (rc != RD_OK)
            break;
        done += b->n;
        if (b->n < PACK_BATCH)
            break;
    }
    if (rc != RD_OK)
        rd_log(d->h, RD_WARN, "compressing logs failed (error %d); they stay uncompressed", rc);
    for (size_t i = 0; i < b->n; i++)
        free(b->p[i].xz);
    free(b);
    return done;
}
