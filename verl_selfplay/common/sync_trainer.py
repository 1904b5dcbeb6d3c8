"""``SyncModeTrainer``: the base of our registered sync-style v1 trainer modes (``pcl``; ``azr`` next).

verl 0.9.1's ``PPOTrainer`` (``verl/trainer/ppo/v1/trainer_base.py``) keys sync-versus-async behaviour on the
literal mode name ``"sync"``: the replay buffer class, forced ``data.gen_batch_size=1``, TransferQueue
checkpointing, re-issue of in-flight prompts and prompt persistence. A mode registered under another name would
silently get the async behaviour, so this class reports ``"sync"`` to the base class and keeps the registered
name in :attr:`registered_mode`.

It also saves and restores a subclass's own state beside verl's checkpoint in ``global_step_N/``: override
:meth:`save_extra_state` and :meth:`load_extra_state`. The extra state is written first, so verl's tracker file
(written last) still marks a complete checkpoint.
"""

from __future__ import annotations

import logging
import os

from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))


class SyncModeTrainer(PPOTrainerSync):
    """verl's synchronous v1 trainer under a registered mode name, with extra checkpoint state."""

    @property
    def trainer_mode(self) -> str:
        """Always ``"sync"`` for verl's base class, which tests the mode name literally (see module docstring)."""
        return "sync"

    @trainer_mode.setter
    def trainer_mode(self, value: str) -> None:
        # PPOTrainer.__init__ assigns config.trainer.v1.trainer_mode (e.g. "pcl"); keep it only for display.
        self.registered_mode = value

    # ------------------------------------------------------------------ extra checkpoint state
    def save_extra_state(self, folder: str) -> None:
        """Write this mode's state into the checkpoint folder ``folder`` (nothing by default)."""

    def load_extra_state(self, folder: str) -> None:
        """Restore what :meth:`save_extra_state` wrote into ``folder`` (nothing by default)."""

    def checkpoint_folder(self) -> str:
        """The ``global_step_N`` folder of the current step under ``trainer.default_local_dir``."""
        return os.path.join(self.config.trainer.default_local_dir, f"global_step_{self.global_steps}")

    def resumed_folder(self) -> str:
        """The absolute checkpoint folder verl resumed from (after ``_load_checkpoint``)."""
        if self.config.trainer.resume_mode == "resume_path":
            folder = str(self.config.trainer.resume_from_path)
        else:
            folder = self.checkpoint_folder()
        return folder if os.path.isabs(folder) else os.path.join(os.getcwd(), folder)

    def _save_checkpoint(self) -> None:
        """This mode's state first, then verl's checkpoint (whose tracker file, written last, marks it complete)."""
        folder = self.checkpoint_folder()
        os.makedirs(folder, exist_ok=True)
        self.save_extra_state(folder)
        super()._save_checkpoint()

    def _load_checkpoint(self) -> None:
        """verl's resume, then this mode's state from the same ``global_step_N`` folder."""
        super()._load_checkpoint()
        if self.global_steps > 0:
            self.load_extra_state(self.resumed_folder())
