"""Absolute Zero Reasoner self-play (proposer/solver roles, task buffers, Task-Relative REINFORCE++): not built yet.
It will hold its pure logic beside a thin verl adapter, like ``verl_selfplay.pcl``.
On (planned): ``trainer.v1.trainer_mode=azr algorithm.adv_estimator=task_relative_reinforce_plus_plus``.
"""
