"""Train the miniature generator G the DeePSiM way: image, feature and adversarial losses, through pycaffe.

G maps E's code c (post-ReLU fc6 of a real image x) back to an image. Its loss on a batch of B is

    lambda_img   * sum ||G(c) - x||^2 / 2B                    image loss (EuclideanLoss, in G's net)
    lambda_shape * sum min_ab ||a G(c) + b - x||^2 / 2B       image loss up to colour (``shape_loss``)
    lambda_feat  * sum ||C(blur G(c)) - C(blur x)||^2 / 2B    feature loss, C = E's conv trunk, frozen
    lambda_adv   * mean -log sigmoid(D(G(c), c))              adversarial loss: D should say "real"

(a, b: the best affine map per image and colour channel; blur: ``feat_blur`` px.) Two departures from
DeePSiM come from this dataset and budget, and the ablation in the README shows what they buy: E's code
holds a shape's class, place, size and turn but not its colours (they are random), so the plain image
loss alone can only paint the average colour (a grey blur); the colour-free image loss lets G draw the
silhouette. And without the blur the feature loss is met with pixel patterns that only E responds to.

Three Caffe nets share the work. C and D are run forward and backward to their input image in Python;
their image gradients (and the colour-free loss's, computed in NumPy), scaled by the loss weights, are
fed into G's training net through ``extra_grad``, where a linear loss (``sum(deconv0 * extra_grad)``)
makes Caffe's backward add them to the image loss's gradient; then G's Adam solver takes the step
(``solver.step(1)``, so the solver's own iteration count, bias correction and learning-rate policy stay
right). D is trained in alternation on real pairs (x, c) against generated pairs (G(c), c) with its own
Adam solver, and, as in DeePSiM, paused while it wins too clearly (its loss below ``d_pause_ratio``
times G's adversarial loss, both smoothed).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import caffe
from . import data as mini_data
from . import netspecs, solvers
from .losses import StepLosses, image_loss, log_every, shape_loss


@dataclass(frozen=True)
class GanConfig:
    """Everything that decides a training run (the run is deterministic given these).

    The loss weights are relative to the losses as defined in the module docstring (sums over pixels or
    features, means over the batch); at these defaults the weighted gradients that reach G's image are
    within two orders of magnitude of each other (in norm, from the training log: colour-free image loss
    ~800-1200, feature ~150, adversarial ~70, plain image ~25), the colour-free image loss leading.
    """

    #: The plain image loss ||G(c) - x||^2. E's code carries no colour (the dataset's colours are random
    #: and E ignores them), so on its own this loss can only draw every shape in the average colour,
    #: i.e. nothing; it is kept small, to anchor G's overall colours.
    lambda_img: float = 0.02
    #: The image loss up to colour (``shape_loss``): G draws the silhouette, in colours of its choosing.
    lambda_shape: float = 1.0
    lambda_feat: float = 3000.0
    lambda_adv: float = 5e4
    steps: int = 6000
    batch: int = 32
    g_lr: float = 1e-3
    d_lr: float = 5e-4
    beta1: float = 0.9
    #: From this share of the steps on, both learning rates are multiplied by 0.2.
    decay_at: float = 0.75
    #: D sees the code with the image (DeePSiM's D does).
    conditional: bool = True
    #: DeePSiM's rule: D skips its update while its loss is below this times G's adversarial loss.
    d_pause_ratio: float = 0.1
    #: Scale of the positive noise added to half of each training code's units (``noisy_codes``); 0: none.
    code_noise: float = 1.0
    #: D's convolutional layers start as a copy of E's trunk (then train) instead of from random.
    d_from_encoder: bool = False
    #: The blob of E's trunk whose features the feature loss compares.
    comparator_top: str = netspecs.COMPARATOR_TOP
    #: Blur (Gaussian sigma, px) of the images the comparator compares; 0: none. Without it the feature
    #: loss is met with pixel-level patterns only E responds to.
    feat_blur: float = 1.0
    seed: int = 0
    #: The training images: None means the train split E was trained on (``data.TRAIN_PER_CLASS``,
    #: ``data.DATA_SEED``).
    n_train_per_class: int | None = None
    data_seed: int | None = None

    @property
    def uses_shape(self) -> bool:
        return self.lambda_shape > 0

    @property
    def uses_d(self) -> bool:
        return self.lambda_adv > 0

    @property
    def uses_c(self) -> bool:
        return self.lambda_feat > 0


@dataclass
class TrainResult:
    config: GanConfig
    losses: list[StepLosses] = field(default_factory=list)
    seconds: float = 0.0


def _solver(proto: Any, lr: float, config: GanConfig, seed: int, workdir: Path, name: str) -> Any:
    decay = max(1, int(config.steps * config.decay_at))
    cfg = solvers.SolverConfig(max_iter=max(config.steps, 1), base_lr=lr, momentum=config.beta1, weight_decay=0.0,
                               lr_policy="multistep", gamma=0.2, stepvalue=(decay,), random_seed=seed)
    return solvers.make_solver(proto, cfg, workdir, name)


class GanTrainer:
    """G's solver, D's solver and C, wired together; one ``step`` is a G update and (maybe) a D update.

    C exists only when ``lambda_feat > 0`` and D only when ``lambda_adv > 0``: a loss with weight 0 is
    not computed at all, so the image-only generator is trained by exactly the image loss.
    """

    def __init__(self, encoder_weights: Path, config: GanConfig, workdir: Path) -> None:
        c = caffe()
        c.set_mode_cpu()
        self.config = config
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        b = config.batch
        self.g_solver = _solver(netspecs.generator_train(b, config.lambda_img), config.g_lr, config, config.seed,
                                self.workdir, "generator_train")
        self.g = self.g_solver.net
        self.d_solver = self.d = None
        if config.uses_d:
            self.d_solver = _solver(netspecs.discriminator(b, config.conditional, config.d_from_encoder),
                                    config.d_lr, config, config.seed + 1, self.workdir, "discriminator")
            self.d = self.d_solver.net
            if config.d_from_encoder:
                self.d.copy_from(str(encoder_weights))  # E's trunk, by layer name; D fine-tunes its copy
        self.c = None
        if config.uses_c:
            path = solvers.write_net(netspecs.comparator(b, config.comparator_top),
                                     self.workdir / "comparator.prototxt")
            self.c = c.Net(str(path), c.TEST, weights=str(encoder_weights))
        self._ema_d: float | None = None
        self._ema_adv: float | None = None

    # --- the pieces, each testable on its own ------------------------------------------------------

    def generate(self, codes: np.ndarray) -> np.ndarray:
        """G(codes) in the pixel scale, from the training net (its current weights)."""
        solvers.set_inputs(self.g, feat=codes)
        self.g.forward(end=netspecs.G_OUTPUT_LAYER)
        return self.g.blobs["deconv0"].data.copy()

    def _blur(self, images: np.ndarray) -> np.ndarray:
        """The comparator's view: a Gaussian blur of ``feat_blur`` px (zero padding, so it is its own adjoint)."""
        sigma = self.config.feat_blur
        if sigma <= 0:
            return images
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(images, sigma=(0, 0, sigma, sigma), mode="constant", truncate=2.0)

    def comparator_features(self, images: np.ndarray) -> np.ndarray:
        """C(images): the blob of E that fc6 reads (``netspecs.COMPARATOR_TOP``), of the blurred images."""
        assert self.c is not None
        return solvers.forward_all(self.c, self._blur(images), self.config.comparator_top, self.config.batch)

    def feature_gradient(self, fake: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """L_feat against the real images' features ``target`` = C(x), and its gradient w.r.t. ``fake``."""
        assert self.c is not None
        solvers.set_inputs(self.c, data=self._blur(fake))
        self.c.forward()
        top = self.c.blobs[self.config.comparator_top]
        diff = top.data - target
        batch = len(fake)
        loss = float(np.sum(diff.astype(np.float64) ** 2) / (2 * batch))
        top.diff[...] = diff / np.float32(batch)
        self.c.backward()
        return loss, self._blur(self.c.blobs["data"].diff.copy())

    def adversarial_gradient(self, fake: np.ndarray, codes: np.ndarray) -> tuple[float, np.ndarray]:
        """L_adv (D's loss on generated images labelled real) and its gradient with respect to them."""
        assert self.d is not None
        self._feed_d(fake, codes, np.ones((len(fake), 1), dtype=np.float32))
        self.d.forward()
        loss = float(self.d.blobs["loss"].data)
        self.d.backward()  # the weight gradients this leaves in D are cleared by D's next solver step
        return loss, self.d.blobs["data"].diff.copy()

    def _feed_d(self, images: np.ndarray, codes: np.ndarray, labels: np.ndarray) -> None:
        blobs = {"data": images, "label": labels}
        if self.config.conditional:
            blobs["feat"] = codes
        solvers.set_inputs(self.d, **blobs)

    def extra_gradient(self, codes: np.ndarray, fake: np.ndarray, target: np.ndarray | None,
                       real: np.ndarray | None = None) -> tuple[np.ndarray, StepLosses]:
        """The gradients G's own net does not compute, weighted, at ``fake``: lambda_feat * dL_feat/dG +
        lambda_shape * dL_shape/dG (needs ``real``) + lambda_adv * dL_adv/dG; with the unweighted losses."""
        cfg = self.config
        grad = np.zeros_like(fake)
        out = StepLosses(float("nan"), float("nan"), float("nan"), float("nan"), False)
        if self.c is not None:
            assert target is not None
            out.feat, g = self.feature_gradient(fake, target)
            g *= np.float32(cfg.lambda_feat)
            out.grad_feat = float(np.linalg.norm(g))
            grad += g
        if cfg.uses_shape:
            assert real is not None
            out.shape, g = shape_loss(fake, real)
            g *= np.float32(cfg.lambda_shape)
            out.grad_shape = float(np.linalg.norm(g))
            grad += g
        if self.d is not None:
            out.adv, g = self.adversarial_gradient(fake, codes)
            g *= np.float32(cfg.lambda_adv)
            out.grad_adv = float(np.linalg.norm(g))
            grad += g
        return grad, out

    def load_g(self, codes: np.ndarray, real: np.ndarray, extra: np.ndarray) -> None:
        """Feed G's training net: after this, its forward/backward is the full G loss and its gradient."""
        solvers.set_inputs(self.g, feat=codes, target=real, extra_grad=extra)

    def d_step(self, codes: np.ndarray, real: np.ndarray, fake: np.ndarray, train: bool = True) -> float:
        """D's loss on real pairs against generated ones; one solver step on it when ``train``."""
        assert self.d is not None
        labels = np.concatenate([np.ones((len(real), 1)), np.zeros((len(fake), 1))]).astype(np.float32)
        self._feed_d(np.concatenate([real, fake]), np.concatenate([codes, codes]), labels)
        if train:
            self.d_solver.step(1)
        else:
            self.d.forward()
        return float(self.d.blobs["loss"].data)

    # --- one iteration ----------------------------------------------------------------------------

    def step(self, codes: np.ndarray, real: np.ndarray, target: np.ndarray | None = None) -> StepLosses:
        """A G update on (codes, real images[, their C features]), then a D update unless D is paused."""
        fake = self.generate(codes)
        if self.c is not None and target is None:
            target = self.comparator_features(real)
        extra, out = self.extra_gradient(codes, fake, target, real)
        self.load_g(codes, real, extra)
        self.g_solver.step(1)  # forward again (same weights, same image), backward, Adam update
        out.img = image_loss(fake, real)
        out.grad_img = self.config.lambda_img * float(np.linalg.norm(fake - real)) / len(fake)
        if self.d is not None:
            out.d_stepped = self._d_should_step()
            out.d = self.d_step(codes, real, fake, train=out.d_stepped)
            self._ema_d = out.d if self._ema_d is None else 0.9 * self._ema_d + 0.1 * out.d
            self._ema_adv = out.adv if self._ema_adv is None else 0.9 * self._ema_adv + 0.1 * out.adv
        return out

    def _d_should_step(self) -> bool:
        """DeePSiM's rule: pause D while its loss is below ``d_pause_ratio`` times G's adversarial loss."""
        if self._ema_d is None or self._ema_adv is None or self._ema_adv <= 0:
            return True
        return self._ema_d / self._ema_adv >= self.config.d_pause_ratio

    # --- saving -----------------------------------------------------------------------------------

    def deploy_generator(self) -> Any:
        """G's current weights in the deploy net (batch 1)."""
        return solvers.deploy_net(netspecs.generator(), weights_from=self.g)

    def save_generator(self, path: Path) -> Path:
        return solvers.save_weights(self.deploy_generator(), path)

    def save_discriminator(self, path: Path) -> Path:
        assert self.d is not None
        return solvers.save_weights(self.d, path)


# --- data and the training loop -------------------------------------------------------------------------


def encode_codes(encoder: Any, images: np.ndarray, batch: int = 200) -> np.ndarray:
    """E's post-ReLU fc6 (the code) for uint8 RGB images (N x 64 x 64 x 3)."""
    out = [solvers.forward_all(encoder, mini_data.to_blob(images[i : i + batch]), "fc6", batch)
           for i in range(0, len(images), batch)]
    return np.concatenate(out).reshape(len(images), -1)


def comparator_targets(trainer: GanTrainer, images: np.ndarray, batch: int = 200) -> np.ndarray | None:
    """C(x) for every training image, computed once (C is frozen), or None when there is no C."""
    if trainer.c is None:
        return None
    return np.concatenate([trainer.comparator_features(mini_data.to_blob(images[i : i + batch]))
                           for i in range(0, len(images), batch)])


def noisy_codes(codes: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Codes with small positive values added to a random half of their units.

    E's codes are sparse (most units 0, a few large), while DGN-AM's codes start dense (half of the
    units of a normal start code survive the clip at 0) and small. Training G to draw the same image
    through such noise makes it draw clean images in the region DGN-AM searches.
    """
    noise = np.abs(rng.standard_normal(codes.shape)) * scale * (rng.random(codes.shape) < 0.5)
    return (codes + noise).astype(np.float32)


def train(trainer: GanTrainer, images: np.ndarray, codes: np.ndarray,
          progress: Callable[[int, StepLosses], None] | None = None) -> TrainResult:
    """``config.steps`` iterations over shuffled batches of (codes, images); deterministic given the seed."""
    cfg = trainer.config
    started = time.perf_counter()
    targets = comparator_targets(trainer, images)
    rng = np.random.default_rng(cfg.seed)
    batches = solvers.minibatches(len(images), cfg.batch, rng)
    result = TrainResult(cfg)
    for i in range(cfg.steps):
        idx = np.sort(next(batches))
        batch_codes = codes[idx]
        if cfg.code_noise > 0:
            batch_codes = noisy_codes(batch_codes, cfg.code_noise, rng)
        losses = trainer.step(batch_codes, mini_data.to_blob(images[idx]),
                              None if targets is None else targets[idx])
        result.losses.append(losses)
        if progress is not None:
            progress(i, losses)
    result.seconds = time.perf_counter() - started
    return result


def reconstruction_rmse(generator: Any, codes: np.ndarray, images: np.ndarray, batch: int = 100) -> float:
    """Root mean squared error of G(E(x)) against x (pixel units, 0..255 scale) over uint8 ``images``."""
    total, count = 0.0, 0
    for i in range(0, len(images), batch):
        real = mini_data.to_blob(images[i : i + batch])
        solvers.set_inputs(generator, feat=codes[i : i + batch])
        generator.forward()
        total += float(np.sum((generator.blobs["deconv0"].data.astype(np.float64) - real) ** 2))
        count += real.size
    return float(np.sqrt(total / count))


def train_generator(directory: Path, log: Callable[[str], None] = lambda _: None,
                    config: GanConfig | None = None, checkpoint_every: int = 0) -> TrainResult:
    """The ``generator`` stage: train G (and D) against E (``directory/encoder.caffemodel``), then save
    ``directory/generator.caffemodel`` (deploy G, ``netspecs.generator``) and ``discriminator.caffemodel``.

    The training images are the dataset's train split (``config.n_train_per_class`` per class from
    ``config.data_seed``, the split E was trained on) and their codes are E's post-ReLU fc6.
    ``checkpoint_every`` > 0 also saves G every that many steps as
    ``directory/checkpoints/generator_iterN.caffemodel`` (the training net's weights, which load into the
    deploy definition by layer name); saving draws no random numbers, so the run stays the same.
    """
    config = config or GanConfig()
    directory = Path(directory)
    started = time.perf_counter()
    encoder_weights = directory / "encoder.caffemodel"
    images, _ = mini_data.make_split("train", config.n_train_per_class or mini_data.TRAIN_PER_CLASS,
                                     mini_data.DATA_SEED if config.data_seed is None else config.data_seed)
    encoder = solvers.deploy_net(netspecs.encoder(200), weights=encoder_weights)
    codes = encode_codes(encoder, images)
    log(f"generator: {len(images)} train images and their codes ({time.perf_counter() - started:.0f} s); "
        f"lambda img {config.lambda_img:g} shape {config.lambda_shape:g} feat {config.lambda_feat:g} "
        f"adv {config.lambda_adv:g}, "
        f"{config.steps} steps of {config.batch}")
    with tempfile.TemporaryDirectory(prefix="dgn-am-gan-") as tmp:
        trainer = GanTrainer(encoder_weights, config, Path(tmp))
        report = log_every(log, config.steps, started)

        def progress(i: int, losses: StepLosses) -> None:
            report(i, losses)
            if checkpoint_every > 0 and (i + 1) % checkpoint_every == 0 and i + 1 < config.steps:
                path = solvers.save_weights(trainer.g, directory / "checkpoints" / f"generator_iter{i + 1}.caffemodel")
                log(f"generator: checkpoint {path}")

        result = train(trainer, images, codes, progress)
        trainer.save_generator(directory / "generator.caffemodel")
        if trainer.d is not None:
            trainer.save_discriminator(directory / "discriminator.caffemodel")
    log(f"generator: {result.seconds:.0f} s of training; saved {directory / 'generator.caffemodel'}")
    return result
