//! Checking a constraint system against a tampered assignment.
//!
//! Symbolic linear combinations cache their values when they are created, so overwriting a witness
//! after synthesis does not reach `is_satisfied`. Negative tests that need a witness no honest
//! synthesis would produce (a "bit" equal to 2, say) use [`satisfied_with`], which inlines the
//! linear combinations and evaluates every R1CS row on the modified assignment.

use crate::Fr;
use ark_relations::gr1cs::{ConstraintSystemRef, Variable, R1CS_PREDICATE_LABEL};

/// A constraint row: `(A, B, C)` as sparse `(coefficient, column)` lists; column 0 is the constant
/// one, then instance variables, then witnesses.
pub type Row = (Vec<(Fr, usize)>, Vec<(Fr, usize)>, Vec<(Fr, usize)>);

/// Whether every R1CS constraint of `cs` holds after replacing each listed variable's value.
/// Finalizes `cs` (inlines its linear combinations).
pub fn satisfied_with(cs: &ConstraintSystemRef<Fr>, changes: &[(Variable, Fr)]) -> bool {
    violated_rows(cs, changes).is_empty()
}

/// The R1CS rows of `cs` that fail after replacing each listed variable's value.
pub fn violated_rows(cs: &ConstraintSystemRef<Fr>, changes: &[(Variable, Fr)]) -> Vec<Row> {
    cs.finalize();
    let matrices = cs.to_matrices().expect("matrices");
    let m = &matrices[R1CS_PREDICATE_LABEL];
    let mut z = cs.instance_assignment().expect("instance");
    let n_inst = z.len();
    z.extend(cs.witness_assignment().expect("witness"));
    for (v, value) in changes {
        let idx = v.index().expect("a variable");
        let pos = if v.is_instance() { idx } else { n_inst + idx };
        z[pos] = *value;
    }
    let eval = |row: &Vec<(Fr, usize)>| row.iter().map(|(c, i)| *c * z[*i]).sum::<Fr>();
    m[0].iter()
        .zip(&m[1])
        .zip(&m[2])
        .filter(|((a, b), c)| eval(a) * eval(b) != eval(c))
        .map(|((a, b), c)| (a.clone(), b.clone(), c.clone()))
        .collect()
}
