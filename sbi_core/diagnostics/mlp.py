"""A batch of independent MLP classifiers, trained at once as sklearn's ``MLPClassifier`` trains one.

The C2ST's classifiers (one per fold per test) are small: ``d -> 10 d -> 10 d -> 1``.
Trained one by one, each pays Python's overhead per mini-batch; stacked along a
leading "model" dimension they share every matrix product and optimiser step, and a
model that has stopped drops out of the batch.

References:
    | scikit-learn's ``sklearn/neural_network/_multilayer_perceptron.py`` (``_fit_stochastic``,
    | ``_init_coef``, ``_update_no_improvement_count``), whose defaults are followed here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional

__all__ = ["BatchedMLP", "fit_like_sklearn"]

LEARNING_RATE = 1e-3
L2_PENALTY = 1e-4  # sklearn's alpha: loss + 0.5 * alpha * sum(W^2) / batch size, weights only
BATCH_SIZE = 200
TOLERANCE = 1e-4
EPOCHS_WITHOUT_IMPROVEMENT = 10  # sklearn stops once the loss has not improved by TOLERANCE for more than this
MAX_EPOCHS = 10_000


class BatchedMLP:
    """``num_models`` independent ReLU MLPs ``dim -> hidden -> hidden -> 1`` stored as stacked weights.

    Initialised as sklearn does for ReLU networks: weights and biases uniform in
    ``+-sqrt(6 / (fan_in + fan_out))``. Gradients are written out by hand: with networks
    this small, autograd's bookkeeping per mini-batch costs more than the arithmetic.

    Example:
        >>> network = BatchedMLP(3, 2, 20, torch.Generator().manual_seed(0))
        >>> network(torch.randn(3, 7, 2)).shape
        torch.Size([3, 7])
    """

    def __init__(self, num_models: int, dim: int, hidden: int, generator: torch.Generator,
                 device: str | torch.device = "cpu") -> None:
        self.weights: list[Tensor] = []
        self.biases: list[Tensor] = []
        for fan_in, fan_out in ((dim, hidden), (hidden, hidden), (hidden, 1)):
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            for shape, store in (((num_models, fan_in, fan_out), self.weights), ((num_models, 1, fan_out), self.biases)):
                store.append(((2 * torch.rand(shape, generator=generator) - 1) * bound).to(device))

    def subset(self, models: Tensor) -> BatchedMLP:
        """The networks ``models`` (indices), as a new batch sharing no storage with this one."""
        subset = BatchedMLP.__new__(BatchedMLP)
        subset.weights = [w[models] for w in self.weights]
        subset.biases = [b[models] for b in self.biases]
        return subset

    @property
    def parameters(self) -> list[Tensor]:
        """Weights, then biases (the order of :meth:`gradients`)."""
        return self.weights + self.biases

    def __call__(self, x: Tensor) -> Tensor:
        """Logits ``[models, n]`` of inputs ``[models, n, dim]``, each model on its own rows."""
        return self._forward(x)[-1].squeeze(-1)

    def _forward(self, x: Tensor) -> list[Tensor]:
        """The inputs, the two hidden layers' pre-activations and the logits ``[models, n, 1]``."""
        (w1, w2, w3), (b1, b2, b3) = self.weights, self.biases
        z1 = torch.baddbmm(b1, x, w1)
        z2 = torch.baddbmm(b2, torch.relu(z1), w2)
        return [x, z1, z2, torch.baddbmm(b3, torch.relu(z2), w3)]

    def loss_and_gradients(self, x: Tensor, y: Tensor, weight: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Per model, sklearn's batch loss (mean cross-entropy over the rows of weight 1, plus
        ``0.5 * alpha * sum(W^2) / batch size``) and its gradients in :attr:`parameters`' order.

        Arguments:
            x: Inputs ``[models, batch, dim]``.
            y: Labels ``[models, batch]``.
            weight: ``[models, batch]``, 1 for a row in the batch, 0 for padding.
        """
        x, z1, z2, logits = self._forward(x)
        logits = logits.squeeze(-1)
        size = weight.sum(dim=1).clamp(min=1.0)
        decay = (L2_PENALTY / size).view(-1, 1, 1)
        cross_entropy = (functional.softplus(logits) - y * logits) * weight
        loss = cross_entropy.sum(dim=1) / size + 0.5 * decay.view(-1) * sum(w.pow(2).sum(dim=(1, 2)) for w in self.weights)
        (w1, w2, w3) = self.weights
        delta3 = ((torch.sigmoid(logits) - y) * weight / size[:, None]).unsqueeze(-1)
        h2, h1 = torch.relu(z2), torch.relu(z1)
        delta2 = torch.bmm(delta3, w3.mT) * (z2 > 0)
        delta1 = torch.bmm(delta2, w2.mT) * (z1 > 0)
        weight_gradients = [torch.baddbmm(w * decay, inputs.mT, delta)
                            for w, inputs, delta in ((w1, x, delta1), (w2, h1, delta2), (w3, h2, delta3))]
        bias_gradients = [delta.sum(dim=1, keepdim=True) for delta in (delta1, delta2, delta3)]
        return loss, weight_gradients + bias_gradients


class _Adam:
    """Adam as sklearn's ``AdamOptimizer`` writes it (bias correction folded into the step size)."""

    def __init__(self, parameters: list[Tensor], learning_rate: float, betas: tuple[float, float] = (0.9, 0.999),
                 epsilon: float = 1e-8) -> None:
        self.parameters, self.learning_rate, self.betas, self.epsilon = parameters, learning_rate, betas, epsilon
        self.first = [torch.zeros_like(p) for p in parameters]
        self.second = [torch.zeros_like(p) for p in parameters]
        self.steps = 0

    def subset(self, models: Tensor, parameters: list[Tensor]) -> _Adam:
        """This optimiser's state for ``models`` (indices), stepping ``parameters``."""
        subset = _Adam(parameters, self.learning_rate, self.betas, self.epsilon)
        subset.first = [m[models] for m in self.first]
        subset.second = [v[models] for v in self.second]
        subset.steps = self.steps
        return subset

    def step(self, gradients: list[Tensor]) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        torch._foreach_mul_(self.first, beta1)
        torch._foreach_add_(self.first, gradients, alpha=1 - beta1)
        torch._foreach_mul_(self.second, beta2)
        torch._foreach_addcmul_(self.second, gradients, gradients, value=1 - beta2)
        step = self.learning_rate * math.sqrt(1 - beta2**self.steps) / (1 - beta1**self.steps)
        denominator = torch._foreach_sqrt(self.second)
        torch._foreach_add_(denominator, self.epsilon)
        torch._foreach_addcdiv_(self.parameters, self.first, denominator, value=-step)


def fit_like_sklearn(network: BatchedMLP, data: Tensor, target: Tensor, training: Tensor,
                     generator: torch.Generator) -> None:
    """Trains each model on its own rows by sklearn's rule for ``MLPClassifier(solver="adam")``.

    Per epoch each model's training rows are shuffled and cut into mini-batches of
    200; each batch's loss is the mean binary cross-entropy plus ``0.5 * alpha *
    sum(W^2) / batch size``; Adam steps (learning rate 1e-3). A model stops once its
    epoch loss has not improved on its best by 1e-4 for more than 10 epochs (or after
    10,000): its weights are kept from then on while the others go on.

    Arguments:
        network: The models, trained in place.
        data: Inputs ``[models, n, dim]``.
        target: Labels ``[n]`` (0 or 1), shared by the models.
        training: ``[models, n]``, True for the rows a model trains on; the counts may
            differ between models.
        generator: Seeds the shuffles.
    """
    counts = training.sum(dim=1)
    longest = int(counts.max())
    # Each model's training rows first (stable), so that a shorter model's padding sits at the end.
    rows = torch.argsort((~training).to(torch.int8), dim=1, stable=True)[:, :longest]
    padding = torch.arange(longest, device=data.device) >= counts[:, None]
    running = torch.arange(data.shape[0], device=data.device)  # the models still training
    active = network.subset(running)
    optimiser = _Adam(active.parameters, LEARNING_RATE)
    best = torch.full((len(running),), math.inf, device=data.device)
    without_improvement = torch.zeros(len(running), dtype=torch.long, device=data.device)
    for epoch in range(1, MAX_EPOCHS + 1):
        keys = torch.rand(len(running), longest, generator=generator).to(data.device) + 2.0 * padding
        order = torch.argsort(keys, dim=1)
        shuffled = torch.gather(rows, 1, order)
        inputs, labels = data[running[:, None], shuffled], target[shuffled]  # this epoch's rows, in batch order
        weights = (~torch.gather(padding, 1, order)).float()
        epoch_loss = torch.zeros(len(running), device=data.device)
        for start in range(0, longest, BATCH_SIZE):
            batch = slice(start, start + BATCH_SIZE)
            loss, gradients = active.loss_and_gradients(inputs[:, batch], labels[:, batch], weights[:, batch])
            optimiser.step(gradients)
            epoch_loss += loss * weights[:, batch].sum(dim=1)
        epoch_loss /= counts
        without_improvement = torch.where(epoch_loss > best - TOLERANCE, without_improvement + 1, 0)
        best = torch.minimum(best, epoch_loss)
        stopping = without_improvement > EPOCHS_WITHOUT_IMPROVEMENT
        if epoch == MAX_EPOCHS:
            stopping[:] = True
        if stopping.any():
            # A model that stops keeps this epoch's weights; the rest go on as a smaller batch.
            for parameter, trained in zip(network.parameters, active.parameters):
                parameter[running[stopping]] = trained[stopping]
            keep = (~stopping).nonzero().squeeze(1)
            if len(keep) == 0:
                return
            running, counts, best, without_improvement = (t[keep] for t in (running, counts, best, without_improvement))
            rows, padding = rows[keep], padding[keep]
            active = active.subset(keep)
            optimiser = optimiser.subset(keep, active.parameters)
