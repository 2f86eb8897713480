//! Dense ids for JSON values, so model states compare and hash as integers.

use std::collections::HashMap;

use serde_json::Value;

/// Maps values to ids: `null` is 0, a non-negative integer n below 2^62 is 2n+1 (no
/// lookup: histories are mostly small integers), anything else an even id 2, 4, ... in
/// order of first sight.
#[derive(Debug)]
pub struct Interner {
    ids: HashMap<String, u64>,
    values: Vec<Value>,
}

impl Default for Interner {
    fn default() -> Self {
        // Slot 0 (id 0) is null's.
        Interner {
            ids: HashMap::from([(Value::Null.to_string(), 0)]),
            values: vec![Value::Null],
        }
    }
}

impl Interner {
    pub fn id(&mut self, v: &Value) -> u64 {
        match v {
            Value::Null => return 0,
            Value::Number(n) => {
                if let Some(n) = n.as_u64().filter(|&n| n < 1 << 62) {
                    return 2 * n + 1;
                }
            }
            _ => {}
        }
        // Canonical text: serde_json writes object keys in sorted order (no
        // preserve_order feature), so equal values get equal text.
        let text = v.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = 2 * self.values.len() as u64;
        self.ids.insert(text, id);
        self.values.push(v.clone());
        id
    }

    pub fn value(&self, id: u64) -> Value {
        if id % 2 == 1 {
            Value::from(id / 2)
        } else {
            self.values[id as usize / 2].clone()
        }
    }
}

/// Dense ids for model states that are lists of value ids (a set's sorted elements, a
/// queue's contents head first, registers' values), so states compare and hash as integers.
#[derive(Debug, Default)]
pub struct States {
    ids: HashMap<Vec<u64>, u64>,
    states: Vec<Vec<u64>>,
    /// Elements held over all interned states.
    elements: u64,
}

impl States {
    pub fn intern(&mut self, state: Vec<u64>) -> u64 {
        if let Some(&id) = self.ids.get(&state) {
            return id;
        }
        let id = self.states.len() as u64;
        self.elements += state.len() as u64;
        self.ids.insert(state.clone(), id);
        self.states.push(state);
        id
    }

    /// Bytes the states hold: each element twice (map key and table), 8 bytes each.
    pub fn bytes(&self) -> u64 {
        self.elements * 2 * 8
    }

    /// A state as the JSON list of its values.
    pub fn list_json(&self, state: u64, values: &Interner) -> Value {
        Value::Array(self[state].iter().map(|&e| values.value(e)).collect())
    }
}

impl std::ops::Index<u64> for States {
    type Output = Vec<u64>;
    fn index(&self, state: u64) -> &Vec<u64> {
        &self.states[state as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_stable_and_round_trip() {
        let mut i = Interner::default();
        for v in [
            json!(null),
            json!(0),
            json!(7),
            json!(-3),
            json!("x"),
            json!([1, 2]),
            json!(1u64 << 63),
        ] {
            let id = i.id(&v);
            assert_eq!(i.id(&v), id);
            assert_eq!(i.value(id), v);
        }
        assert_eq!(i.id(&json!(null)), 0);
        assert_ne!(i.id(&json!(1)), i.id(&json!("1")));
    }
}
