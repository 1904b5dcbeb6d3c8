"""Prompt Curriculum Learning: pick each step's prompts whose predicted pass rate is nearest tau, fit V after.
Pure logic in ``selection`` (selection, candidate pool) and ``value_model``; the verl adapter is ``trainer``.
On: ``trainer.v1.trainer_mode=pcl`` (+ optional ``+pcl.k``, ``+pcl.tau``, ``+pcl.value_model``, ``+pcl.metric``).
"""
