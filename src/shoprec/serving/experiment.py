"""The experiment a server runs: its settings, and which arm answers each request.

``shoprec serve`` reads ``serving.experiment`` from the working ``params.yaml`` and hands
it to the server as JSON in ``$SHOPREC_EXPERIMENT`` (unset: no experiment; a bundle's own
params never start one). The server loads the challenger's bundle beside the champion's
in every worker (one copy when both arms name the same model: an A/A test), and each
``/recommend``, ``/search`` and ``/similar`` is answered by the model of the shopper's arm
(:func:`shoprec.experiments.assignment.assign`: user id, else session id; neither: the
champion). ``/user``, ``/users`` and ``/feedback`` are the shop's, not a model's: the
champion's catalog and shopper list answer them, and feedback accepts an item either arm
knows.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoprec.config import ExperimentParams, section_from_env
from shoprec.experiments.assignment import CHALLENGER, assign

ENV = "SHOPREC_EXPERIMENT"


def from_env() -> ExperimentParams:
    """The experiment in ``$SHOPREC_EXPERIMENT`` (unset: none); exits with the broken rule when it is invalid."""
    return section_from_env(ENV, ExperimentParams(), "serving.experiment")


@dataclass(frozen=True)
class Arm:
    variant: str
    model: object  # shoprec.serving.model.ServingModel
    encode_ahead: object  # its query encoder thread (shoprec.serving.batching.BackgroundBatcher)


@dataclass(frozen=True)
class Arms:
    experiment: ExperimentParams
    champion: Arm
    challenger: Arm | None = None  # None: no experiment

    def of(self, user_id: str | None, session_id: str | None) -> Arm:
        """The arm that answers this shopper."""
        if self.challenger is None:
            return self.champion
        e = self.experiment
        return self.challenger if assign(e.salt, e.share, user_id, session_id) == CHALLENGER else self.champion

    def models(self) -> list:
        """Each loaded model once."""
        return list({id(a.model): a.model for a in (self.champion, self.challenger) if a is not None}.values())

