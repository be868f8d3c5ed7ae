r"""Losses of neural ratio estimation, computed from the all-pairs logit matrix.

Every loss reads the logits of a batch of ``B`` joint draws :math:`(\theta_i, x_i)`
as a matrix ``logits[i, j] = f(theta_i, x_j)``: the diagonal holds the joint pairs,
the rest marginal pairs :math:`\theta \sim p(\theta)`, :math:`x \sim p(x)`.

**Atoms.** Each observation ``x_j`` gets a row of ``K`` atoms, the parameter
indices ``atoms[j] = (j, i_1, ..., i_{K-1})`` (:func:`draw_atoms`): the joint one
first, then ``K - 1`` distinct indices drawn uniformly without replacement from
``{0, ..., B-1} \ {j}``, independently for each ``j``. This is the distribution of
sbi's ``torch.multinomial`` choice, drawn from a caller's generator. The loss then
sees ``atom_logits[j, k] = logits[atoms[j, k], j]``, shape ``[B, K]``; a trainer
computes only those entries (:meth:`RatioEstimator.per_observation` on
``theta[atoms]``), which for ``K << B`` is ``B / K`` times cheaper than the full
matrix and gives the same loss.

* NRE-A and BNRE use ``K = 2``: one joint and one marginal pair per observation.
* NRE-B uses ``K = num_atoms``.
* NRE-C with ``num_classes`` :math:`K_c` uses ``K_c + 1`` atoms per observation:
  its joint set is columns ``0 .. K_c - 1`` (the joint pair and ``K_c - 1``
  marginal ones) and its all-marginal set columns ``1 .. K_c``. sbi draws the two
  sets independently; sharing ``K_c - 1`` of them leaves each term's expectation
  unchanged and saves half the network evaluations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "draw_atoms",
    "RatioLoss",
    "NREALoss",
    "NREBLoss",
    "NRECLoss",
    "BNRELoss",
    "LOSSES",
    "build_loss",
]


def draw_atoms(batch_size: int, num_atoms: int, generator: torch.Generator | None = None) -> Tensor:
    """Draws, for each observation of a batch, its joint parameter and ``num_atoms - 1`` marginal ones.

    Arguments:
        batch_size: The number ``B`` of joint draws in the batch.
        num_atoms: The number ``K`` of atoms per observation, ``2 <= K <= B``.
        generator: A CPU generator (the global one if omitted); the atoms are drawn
            on the CPU so a seed gives the same atoms on every device.

    Returns:
        Parameter indices ``[B, K]`` (int64, CPU): column 0 is ``arange(B)``; row ``j``
        holds ``K - 1`` distinct indices other than ``j``, uniformly at random.

    Example:
        >>> atoms = draw_atoms(5, 3, torch.Generator().manual_seed(0))
        >>> atoms[:, 0].tolist(), bool((atoms[:, 1:] != atoms[:, :1]).all())
        ([0, 1, 2, 3, 4], True)
    """
    if not 2 <= num_atoms <= batch_size:
        raise ValueError(
            f"num_atoms: expected 2 <= num_atoms <= batch size = {batch_size}, got {num_atoms}"
        )
    rows = torch.arange(batch_size)
    # The top K-1 of B-1 iid uniforms is a uniform random subset of the offsets 1..B-1.
    offsets = torch.rand(batch_size, batch_size - 1, generator=generator).topk(num_atoms - 1, dim=1).indices + 1
    return torch.cat((rows[:, None], (rows[:, None] + offsets) % batch_size), dim=1)


class RatioLoss(nn.Module):
    """A loss of the all-pairs logit matrix, through ``num_atoms`` atoms per observation.

    Subclasses define :meth:`atom_loss`; :meth:`forward` gathers the atoms from the matrix.
    """

    num_atoms: int

    def atoms(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Draws the atoms of a batch with :func:`draw_atoms`, ``[B, num_atoms]``."""
        return draw_atoms(batch_size, self.num_atoms, generator)

    def forward(self, logits: Tensor, atoms: Tensor | None = None) -> Tensor:
        """Returns the loss of a batch.

        Arguments:
            logits: The all-pairs matrix ``[B, B]``, ``logits[i, j] = f(theta_i, x_j)``.
            atoms: Parameter indices ``[B, num_atoms]`` (see :func:`draw_atoms`); drawn
                from the global generator if omitted.

        Returns:
            The mean loss over the batch, a scalar.
        """
        if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
            raise ValueError(f"logits: expected a square all-pairs matrix [B, B], got {list(logits.shape)}")
        if atoms is None:
            atoms = self.atoms(len(logits))
        # Column j of the matrix is observation x_j; row atoms[j, k] its k-th parameter.
        return self.atom_loss(logits.T.gather(1, atoms.to(logits.device)))

    def atom_loss(self, atom_logits: Tensor) -> Tensor:
        """Returns the loss from the gathered logits ``[B, num_atoms]`` (column 0 joint)."""
        raise NotImplementedError


class NREALoss(RatioLoss):
    r"""Binary cross-entropy of joint against marginal pairs (NRE-A, AALR).

    With ``l_j`` the joint logit of observation ``j`` and ``m_j`` one marginal logit,
    :math:`\mathcal{L} = -\frac{1}{2B} \sum_j [\log \sigma(l_j) + \log \sigma(-m_j)]`,
    sbi's ``NRE_A`` loss (two atoms per observation).

    Example:
        >>> math.isclose(NREALoss()(torch.zeros(4, 4)).item(), math.log(2), rel_tol=1e-6)
        True

    References:
        | Likelihood-free MCMC with Amortized Approximate Ratio Estimators (Hermans et al., 2020)
        | https://arxiv.org/abs/1903.04057
    """

    num_atoms = 2

    def atom_loss(self, atom_logits: Tensor) -> Tensor:
        return -(F.logsigmoid(atom_logits[:, 0]) + F.logsigmoid(-atom_logits[:, 1])).mean() / 2


class BNRELoss(NREALoss):
    r"""NRE-A's cross-entropy plus the balancing penalty (BNRE).

    :math:`\mathcal{L} = \mathcal{L}_A + \lambda \big(\frac{1}{B} \sum_j
    [\sigma(l_j) + \sigma(m_j)] - 1\big)^2`, sbi's ``BNRE`` loss.

    Arguments:
        regularization_strength: The balancing weight :math:`\lambda` (sbi's default 100).

    Example:
        >>> math.isclose(BNRELoss(100.0)(torch.zeros(4, 4)).item(), math.log(2), rel_tol=1e-6)
        True

    References:
        | Towards Reliable Simulation-Based Inference with Balanced Neural Ratio Estimation
        | (Delaunoy et al., 2022) https://arxiv.org/abs/2208.13624
    """

    def __init__(self, regularization_strength: float = 100.0):
        super().__init__()
        if not regularization_strength >= 0:
            raise ValueError(f"regularization_strength: expected >= 0, got {regularization_strength}")
        self.regularization_strength = float(regularization_strength)

    def atom_loss(self, atom_logits: Tensor) -> Tensor:
        balance = (torch.sigmoid(atom_logits[:, 0]) + torch.sigmoid(atom_logits[:, 1]) - 1).mean()
        return super().atom_loss(atom_logits) + self.regularization_strength * balance.square()


class NREBLoss(RatioLoss):
    r"""Contrastive cross-entropy: which of ``K`` pairs is the joint one (NRE-B, SNRE-B).

    :math:`\mathcal{L} = -\frac{1}{B} \sum_j [f(\theta_j, x_j) - \log \sum_{k}
    \exp f(\theta_{a_{jk}}, x_j)]`, sbi's ``NRE_B`` loss. At the optimum
    the logit equals the log ratio up to an additive function of x, which the
    posterior does not see.

    Arguments:
        num_atoms: ``K``, the joint pair plus ``K - 1`` marginal ones (sbi's default 10).

    Example:
        >>> math.isclose(NREBLoss(3)(torch.zeros(4, 4)).item(), math.log(3), rel_tol=1e-6)
        True

    References:
        | On Contrastive Learning for Likelihood-free Inference (Durkan et al., 2020)
        | https://arxiv.org/abs/2002.03712
    """

    def __init__(self, num_atoms: int = 10):
        super().__init__()
        if num_atoms < 2:
            raise ValueError(f"num_atoms: expected at least 2, got {num_atoms}")
        self.num_atoms = int(num_atoms)

    def atom_loss(self, atom_logits: Tensor) -> Tensor:
        return -(atom_logits[:, 0] - torch.logsumexp(atom_logits, dim=1)).mean()


class NRECLoss(RatioLoss):
    r"""Contrastive NRE: ``K + 1``-way classification with an all-marginal class (NRE-C).

    With :math:`\ell_{jk}` the logits of the joint set (``k = 0`` joint) and
    :math:`\mu_{jk}` those of the all-marginal set, ``k = 1..K``:

    .. math::
        \log p_0 = \log K - \log\big(K + \gamma \textstyle\sum_k e^{\mu_{jk}}\big), \quad
        \log p_J = \log\gamma + \ell_{j0} - \log\big(K + \gamma \textstyle\sum_k e^{\ell_{jk}}\big)

    and :math:`\mathcal{L} = -\frac{1}{B}\sum_j [\frac{1}{1+\gamma} \log p_0 +
    \frac{\gamma}{1+\gamma} \log p_J]`, exactly sbi's ``NRE_C`` loss. Unlike NRE-B,
    the logit converges to the log ratio itself (no free function of x).

    Arguments:
        num_classes: ``K`` (sbi's default 5); the loss takes ``K + 1`` atoms.
        gamma: The odds :math:`\gamma` of the joint classes against the marginal one.

    Example:
        >>> loss = NRECLoss(num_classes=2, gamma=1.0)
        >>> loss.num_atoms, math.isclose(loss(torch.zeros(4, 4)).item(), 1.5 * math.log(2), rel_tol=1e-6)
        (3, True)

    References:
        | Contrastive Neural Ratio Estimation (Miller et al., 2022)
        | https://arxiv.org/abs/2210.06170
    """

    def __init__(self, num_classes: int = 5, gamma: float = 1.0):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes: expected at least 1, got {num_classes}")
        if not gamma > 0:
            raise ValueError(f"gamma: expected > 0, got {gamma}")
        self.num_classes = int(num_classes)
        self.num_atoms = self.num_classes + 1
        self.gamma = float(gamma)

    def atom_loss(self, atom_logits: Tensor) -> Tensor:
        k = self.num_classes
        log_gamma, log_k = math.log(self.gamma), math.log(k)
        joint, marginal = atom_logits[:, :k], atom_logits[:, 1:]
        log_k_column = atom_logits.new_full((len(atom_logits), 1), log_k)
        log_p_marginal = log_k - torch.logsumexp(torch.cat((log_gamma + marginal, log_k_column), 1), 1)
        log_p_joint = log_gamma + joint[:, 0] - torch.logsumexp(torch.cat((log_gamma + joint, log_k_column), 1), 1)
        p_marginal, p_joint = 1 / (1 + self.gamma), self.gamma / (1 + self.gamma)
        return -(p_marginal * log_p_marginal + p_joint * log_p_joint).mean()


LOSSES: tuple[str, ...] = ("nre_a", "nre_b", "nre_c", "bnre")


def build_loss(
    name: str, num_atoms: int = 10, gamma: float = 1.0, regularization_strength: float = 100.0
) -> RatioLoss:
    """Builds a loss by name, with the training settings' meaning of ``num_atoms``.

    Arguments:
        name: ``"nre_a"``, ``"nre_b"``, ``"nre_c"`` or ``"bnre"``.
        num_atoms: Atoms per observation: ``K`` for NRE-B; ``K_c + 1`` for NRE-C
            (``num_classes = num_atoms - 1``, sbi's internal count); ignored by NRE-A
            and BNRE, which always take 2.
        gamma: NRE-C's gamma.
        regularization_strength: BNRE's lambda.

    Returns:
        The loss module.

    Example:
        >>> build_loss("nre_c", num_atoms=6).num_classes
        5
    """
    if name == "nre_a":
        return NREALoss()
    if name == "bnre":
        return BNRELoss(regularization_strength)
    if name == "nre_b":
        return NREBLoss(num_atoms)
    if name == "nre_c":
        return NRECLoss(num_atoms - 1, gamma)
    raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {name!r}")
