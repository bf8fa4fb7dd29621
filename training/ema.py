"""Exponential moving average of the trainable parameters, with the two official update rules.

* ``rule='score_sde'`` (NCSN++, DDPM++, DDPM; score_sde ``models/ema.py``, adapted there from fadel/pytorch_ema):
  ``n += 1; decay_eff = min(decay, (1 + n) / (10 + n)); shadow -= (1 - decay_eff) (shadow - param)``.
* ``rule='ncsnv2'`` (ermongroup/ncsnv2 ``models/ema.py::EMAHelper``): ``shadow = (1 - mu) param + mu shadow``.

NCSN v1 has no EMA (``config.model.ema = False``).  The shadow is a list in trainable-parameter order
(``[p for p in net.parameters() if p.requires_grad]``), which is exactly score_sde's ``shadow_params``;
:meth:`EMA.official` gives the official export of either format (NCSNv2: a name -> tensor dict).
"""
import torch


class EMA:
    """EMA over ``net``'s trainable parameters (the shadow starts as a copy of them)."""

    RULES = ('score_sde', 'ncsnv2')

    def __init__(self, net, decay, rule='score_sde'):
        if rule not in self.RULES:
            raise ValueError(f'EMA rule {rule!r}: expected one of {self.RULES}')
        self.decay, self.rule, self.num_updates = float(decay), rule, 0
        self.names = [k for k, p in net.named_parameters() if p.requires_grad]
        self.shadow_params = [p.detach().clone() for p in _trainable(net)]
        self._stored = None

    @torch.no_grad()
    def update(self, net):
        """One EMA step after an optimiser step."""
        self.num_updates += 1
        params = _trainable(net)
        if self.rule == 'score_sde':   # shadow -= (1 - decay_eff) (shadow - param)
            decay = min(self.decay, (1. + self.num_updates) / (10. + self.num_updates))
            diff = torch._foreach_sub(self.shadow_params, params)
            torch._foreach_mul_(diff, 1. - decay)
            torch._foreach_sub_(self.shadow_params, diff)
        else:                          # shadow = (1 - mu) param + mu shadow
            torch._foreach_mul_(self.shadow_params, self.decay)
            torch._foreach_add_(self.shadow_params, torch._foreach_mul(params, 1. - self.decay))

    @torch.no_grad()
    def copy_to(self, net):
        """Overwrite ``net``'s trainable parameters with the shadow (e.g. for sampling)."""
        for s, p in zip(self.shadow_params, _trainable(net)):
            p.copy_(s)

    def store(self, net):
        """Remember ``net``'s current trainable parameters (before :meth:`copy_to`)."""
        self._stored = [p.detach().clone() for p in _trainable(net)]

    @torch.no_grad()
    def restore(self, net):
        """Put back the parameters saved by :meth:`store`."""
        if self._stored is None:
            raise RuntimeError('EMA.restore() without a previous store()')
        for s, p in zip(self._stored, _trainable(net)):
            p.copy_(s)
        self._stored = None

    def state_dict(self):
        """score_sde ``ExponentialMovingAverage.state_dict()``: decay, num_updates, shadow_params (list)."""
        return {'decay': self.decay, 'num_updates': self.num_updates, 'shadow_params': self.shadow_params}

    def load_state_dict(self, state):
        shadow = state['shadow_params']
        if len(shadow) != len(self.shadow_params):
            raise ValueError(f'EMA state has {len(shadow)} tensors, the model has {len(self.shadow_params)} '
                             'trainable parameters')
        with torch.no_grad():
            for s, t in zip(self.shadow_params, shadow):
                s.copy_(t)
        self.decay, self.num_updates = float(state['decay']), int(state['num_updates'])

    def official(self):
        """The EMA as the official code saves it: score_sde ``state_dict()``, or NCSNv2's name -> tensor dict."""
        if self.rule == 'ncsnv2':
            return {k: s.detach().clone() for k, s in zip(self.names, self.shadow_params)}
        return {'decay': self.decay, 'num_updates': self.num_updates,
                'shadow_params': [s.detach().clone() for s in self.shadow_params]}


def _trainable(net):
    return [p for p in net.parameters() if p.requires_grad]


def ema_rule(config):
    """'score_sde' for the score_sde families (NCSN++ / DDPM++, DDPM), 'ncsnv2' otherwise; None when
    ``config.model.ema`` is off."""
    if not config.model.get('ema', True):
        return None
    return 'score_sde' if config.model.family in ('ncsnpp', 'ddpm') else 'ncsnv2'
