"""First-order optimisers on flat numpy vectors (ascent)."""

import numpy as np


class Adam:
    """
    Adam (Kingma & Ba 2015) that maximises: ``step`` returns the increment to add.

    :param dim: Dimension of the parameter vector
    :param beta1: Decay of the first moment
    :param beta2: Decay of the second moment
    :param epsilon: Numerical stability term
    """

    def __init__(self, dim: int, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.m = np.zeros(dim, dtype=np.float64)
        self.v = np.zeros(dim, dtype=np.float64)
        self.t = 0

    def step(self, gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        """
        :param gradient: Ascent direction
        :param learning_rate: Step size
        :return: the increment to add to the parameters
        """
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1 - self.beta2) * gradient * gradient
        corrected_lr = learning_rate * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        return corrected_lr * self.m / (np.sqrt(self.v) + self.epsilon)
