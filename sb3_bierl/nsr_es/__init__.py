from sb3_bierl.nsr_es.nsr_es import NSRAES, NSRES

__all__ = ["NSRAES", "NSRES"]
