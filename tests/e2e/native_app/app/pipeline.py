"""python -m app.pipeline: two threads. A producer thread ("producer") reads lines slowly and
puts each on a queue; the main thread waits on the queue for each one (the wait a causal link
attributes to the producer's put) and parses it, recording the values of `parse`
(record_calls values=...). One line is not a number: its parse raises."""

import queue
import threading
import time

import devtrace

LINES = ["12", "7", "4x2", "30"]


def produce(q, line):
    time.sleep(0.04)  # a slow source: the consumer waits for it
    q.put(line)


def producer(q):
    for line in LINES:
        produce(q, line)
    q.put(None)


def consume(q):
    return q.get()


def parse(text):
    time.sleep(0.002)  # over the 1 ms threshold: every call is recorded
    return int(text) * 2


def main():
    devtrace.configure(service_name="pipeline")
    recorder = devtrace.record_calls("app", values=["app.pipeline:parse"], threshold_ms=1)
    q = queue.Queue()
    worker = threading.Thread(target=producer, args=(q,), name="producer")
    worker.start()
    while (line := consume(q)) is not None:
        try:
            parse(line)
        except ValueError:
            pass
    worker.join()
    recorder.stop()


if __name__ == "__main__":
    main()
