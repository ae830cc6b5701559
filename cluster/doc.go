// Package cluster runs mp's Pool and JoinableQueue across machines over
// NATS JetStream: the step Python programs take from
// multiprocessing.Pool to Celery, RQ or Ray, without leaving mp's API.
//
// [NewPool] returns an ordinary *mp.Pool whose tasks run on workers that
// call [Serve] in the same binary on any number of machines; [mp.Map],
// [mp.MapSeq], [mp.Apply] and the rest work on it unchanged. [NewQueue]
// and [NewJoinableQueue] give the queue method set of mp over a shared
// server. Package embed runs a JetStream server inside a program, so that
// one command runs everything on a laptop; a real deployment points the
// same program at nats-server -js by URL.
//
// A worker is started like this, after [mp.Main]:
//
//	nc, err := nats.Connect(url, nats.UserCredentials("worker.creds"))
//	...
//	js, err := jetstream.New(nc)
//	...
//	log.Fatal(cluster.Serve(ctx, js, "jobs"))
//
// and a submitter maps over it as over any pool:
//
//	pool, err := cluster.NewPool(ctx, js, "jobs")
//	...
//	out, err := mp.Map(ctx, pool, resize, images)
//
// # Delivery
//
// Execution is at least once. A worker that dies or goes silent for
// [AckWait] loses its tasks to other workers, up to [MaxDeliver]
// deliveries, after which the task fails with an error wrapping
// [mp.ErrLost]; a queue item is delivered again the same way. So a task
// or a consumer of a queue may see the same work twice, and should be
// idempotent: write a result under a key derived from the input
// (overwrite, or insert-if-absent), never append it. Each submission
// carries a message id, so a submission the server received twice runs
// once.
//
// A worker claims each task from its submitter before it runs it. A task
// whose submitter no longer waits for it (its context ended, or the pool
// was terminated) is therefore not run, and a submitter whose task's
// context ended waits until the worker running it has stopped, as mp's
// other pools do.
//
// # Security
//
// Whoever can publish on a pool's subjects can make its workers run any
// task registered in their binary, with arguments of their choosing. An
// embedded server that listens on a port requires a token; a real
// cluster should use TLS and credentials, given to nats.Connect as
// nats.go options (nats.UserCredentials, nats.RootCAs, nats.ClientCert),
// and permissions that let only submitters publish on mp.<pool>.>.
//
// # Names on the server
//
// A pool called name uses the stream MP_<name> (subjects mp.<name>.t.>)
// with the durable consumer "workers", and core NATS subjects
// mp.<name>.cancel and the submitter's inbox; a queue uses the stream
// MPQ_<name> (subjects mpq.<name>.items and mpq.<name>.closed) with the
// durable consumer "consumers". Deleting the stream resets the pool or
// queue.
package cluster
