from sb3_bierl.es.es import ES
from sb3_bierl.es.policies import ESLinearPolicy, ESPolicy, LinearPolicy, MlpPolicy

__all__ = ["ES", "ESLinearPolicy", "ESPolicy", "LinearPolicy", "MlpPolicy"]
