"""Corpora shared by the checker tests and `benchmarks/checker_corpus.py`: real facts documents
(the demo organisation, a real repository), lies and faithful paraphrases built from them, and
harmful and legitimate advice."""
