"""``ptviz convert``'s formats: readers into one stream of event rows (:mod:`.stream`),
and a writer per output format (:mod:`.jsonl`, :mod:`.ftrace_text`, :mod:`.chrome`;
msgpack is :class:`replayer.traceio.TraceWriter`)."""
