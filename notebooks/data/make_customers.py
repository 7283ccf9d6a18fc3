"""Generate notebooks/data/customers.csv, the demo notebook's data set (run once; the CSV is committed).

    python notebooks/data/make_customers.py

Synthetic telecom customers with a fixed seed, so the same file comes out every time. It carries the blemishes a
real export has: blank ``total_charges`` for brand-new customers, a few negative tenures from a bad join, and a
mixed-case ``contract`` column.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

ROWS = 800
SEED = 20240501
OUT = Path(__file__).with_name("customers.csv")

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["electronic check", "mailed check", "bank transfer", "credit card"]
INTERNET = ["dsl", "fiber", "none"]


def main() -> None:
    rng = random.Random(SEED)
    rows = []
    for i in range(ROWS):
        contract = rng.choices(CONTRACTS, weights=[0.55, 0.25, 0.20])[0]
        internet = rng.choices(INTERNET, weights=[0.35, 0.45, 0.20])[0]
        payment = rng.choice(PAYMENTS)
        senior = int(rng.random() < 0.16)
        tenure = max(0, int(rng.expovariate(1 / 28)))
        tenure = min(tenure, 72)
        base = {"dsl": 45.0, "fiber": 80.0, "none": 22.0}[internet]
        monthly = round(max(9.99, base + rng.gauss(0, 9) + 5 * senior), 2)
        support_calls = min(9, int(rng.expovariate(1 / 1.5)))
        total: str = f"{max(monthly, monthly * tenure + rng.gauss(0, 15)):.2f}" if tenure > 0 else " "
        # churn log-odds: short tenure, month-to-month, fiber, e-check and support calls push towards churn
        z = (
            -1.1
            - 0.045 * tenure
            + {"month-to-month": 1.3, "one-year": 0.0, "two-year": -1.2}[contract]
            + {"dsl": 0.0, "fiber": 0.6, "none": -0.7}[internet]
            + (0.5 if payment == "electronic check" else 0.0)
            + 0.35 * support_calls
            + 0.3 * senior
        )
        churned = int(rng.random() < 1 / (1 + math.exp(-z)))
        if rng.random() < 0.01:
            tenure = -tenure - 1  # a bad join upstream
        if rng.random() < 0.05:
            contract = contract.upper()
        rows.append(
            {
                "customer_id": f"C{10000 + i}",
                "tenure_months": tenure,
                "contract": contract,
                "internet_service": internet,
                "payment_method": payment,
                "senior": senior,
                "monthly_charges": f"{monthly:.2f}",
                "total_charges": total,
                "support_calls": support_calls,
                "churned": churned,
            }
        )
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
