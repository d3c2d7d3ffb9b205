//! [`Schema`]: how a table's columns became features and target, saved with a model (as JSON
//! in its metadata) and applied again to new files. Its serialized form is deterministic
//! (lists only, in a fixed order), and a deserialized schema is validated like a new one, so
//! a corrupt model file is an error rather than a wrong encoding.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::TargetKind;

/// One input column of the file, in the order it feeds the features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Column {
    /// A number column: one feature.
    Numeric {
        /// The column's name in the header.
        name: String,
    },
    /// A text (or code) column one-hot encoded: one 0/1 feature per category, named
    /// `name=category`, in the order of `categories`.
    Categorical {
        /// The column's name in the header.
        name: String,
        /// The categories seen in training, sorted (numerically when all are integers).
        categories: Vec<String>,
    },
}

impl Column {
    /// The column's name in the header.
    pub fn name(&self) -> &str {
        match self {
            Column::Numeric { name } | Column::Categorical { name, .. } => name,
        }
    }

    /// The names of the features this column becomes.
    fn feature_names(&self) -> Vec<String> {
        match self {
            Column::Numeric { name } => vec![name.clone()],
            Column::Categorical { name, categories } => {
                categories.iter().map(|c| format!("{name}={c}")).collect()
            }
        }
    }
}

/// The encoding of a table: feature columns in order (with the categories of one-hot ones),
/// the target columns, the target's kind and its class names.
///
/// Invariants (checked when built and when deserialized): at least one feature column; no
/// name used twice among features, target columns and one-hot feature names; every
/// categorical column has categories, none twice; [`TargetKind::Classes`] has one target
/// column and at least two classes, [`TargetKind::Binary`] one column and exactly two,
/// [`TargetKind::MultiLabel`] has the target columns as its classes, [`TargetKind::Values`]
/// has no classes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SchemaFields")]
pub struct Schema {
    columns: Vec<Column>,
    target: Vec<String>,
    target_kind: TargetKind,
    classes: Vec<String>,
    /// Derived from `columns`, kept to hand out slices.
    #[serde(skip)]
    feature_names: Vec<String>,
}

/// The serialized fields, checked by [`Schema::new`] on the way in.
#[derive(Deserialize)]
struct SchemaFields {
    columns: Vec<Column>,
    target: Vec<String>,
    target_kind: TargetKind,
    classes: Vec<String>,
}

impl TryFrom<SchemaFields> for Schema {
    type Error = String;

    fn try_from(f: SchemaFields) -> Result<Self, String> {
        Schema::new(f.columns, f.target, f.target_kind, f.classes)
            .map_err(|why| format!("invalid table schema: {why}"))
    }
}

impl Schema {
    /// A schema, or why its parts do not fit together (worded for the reader to reuse).
    pub(crate) fn new(
        columns: Vec<Column>,
        target: Vec<String>,
        target_kind: TargetKind,
        classes: Vec<String>,
    ) -> Result<Self, String> {
        if columns.is_empty() {
            return Err("no feature columns; a table needs at least one besides the target".into());
        }
        if target.is_empty() {
            return Err("no target column".into());
        }
        let mut names = BTreeSet::new();
        for name in columns.iter().map(Column::name).chain(target.iter().map(String::as_str)) {
            if !names.insert(name) {
                return Err(format!("column `{name}` is used twice (as features or target)"));
            }
        }
        for column in &columns {
            if let Column::Categorical { name, categories } = column {
                if categories.is_empty() {
                    return Err(format!("categorical column `{name}` has no categories"));
                }
                if let Some(dup) = first_duplicate(categories) {
                    return Err(format!("categorical column `{name}` lists category `{dup}` twice"));
                }
            }
        }
        let feature_names: Vec<String> = columns.iter().flat_map(Column::feature_names).collect();
        if let Some(dup) = first_duplicate(&feature_names) {
            return Err(format!("two features are named `{dup}`; rename the column that makes it"));
        }
        check_classes(&target, target_kind, &classes)?;
        Ok(Schema { columns, target, target_kind, classes, feature_names })
    }

    /// The feature columns of the file, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The names of the features after one-hot encoding, in order: a numeric column's name,
    /// or `column=category` for each category of a categorical one.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Features per row after one-hot encoding: the model's input width.
    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// The target columns' names, in order.
    pub fn target_names(&self) -> &[String] {
        &self.target
    }

    /// What the target is.
    pub fn target_kind(&self) -> TargetKind {
        self.target_kind
    }

    /// The class names, sorted as the indices count them (numerically when all are
    /// integers): for [`TargetKind::MultiLabel`] the target columns; empty for
    /// [`TargetKind::Values`].
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The model's output width: one logit per class for [`TargetKind::Classes`] and
    /// [`TargetKind::MultiLabel`], one for [`TargetKind::Binary`], one per target column for
    /// [`TargetKind::Values`]. A [`super::Target::Values`] holds this many values per row.
    pub fn outputs(&self) -> usize {
        match self.target_kind {
            TargetKind::Classes | TargetKind::MultiLabel => self.classes.len(),
            TargetKind::Binary => 1,
            TargetKind::Values => self.target.len(),
        }
    }
}

fn check_classes(target: &[String], kind: TargetKind, classes: &[String]) -> Result<(), String> {
    if let Some(dup) = first_duplicate(classes) {
        return Err(format!("class `{dup}` is listed twice"));
    }
    let single = || -> Result<(), String> {
        match target {
            [_] => Ok(()),
            _ => Err(format!(
                "a {kind:?} target is one column, not {} ({}); use MultiLabel for several 0/1 columns",
                target.len(),
                target.join(", ")
            )),
        }
    };
    match kind {
        TargetKind::Classes => {
            single()?;
            if classes.len() < 2 {
                return Err(format!(
                    "the target has {} class(es) ({}); a classifier needs at least two",
                    classes.len(),
                    classes.join(", ")
                ));
            }
        }
        TargetKind::Binary => {
            single()?;
            if classes.len() != 2 {
                return Err(format!(
                    "a binary target needs exactly two classes, not {} ({}); use Classes for more",
                    classes.len(),
                    classes.join(", ")
                ));
            }
        }
        TargetKind::MultiLabel if classes != target => {
            return Err("a multi-label target's classes must be its target columns".into());
        }
        TargetKind::Values if !classes.is_empty() => {
            return Err("a values (regression) target has no classes".into());
        }
        TargetKind::MultiLabel | TargetKind::Values => {}
    }
    Ok(())
}

fn first_duplicate(names: &[String]) -> Option<&str> {
    let mut seen = BTreeSet::new();
    names.iter().find(|n| !seen.insert(n.as_str())).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(name: &str) -> Column {
        Column::Numeric { name: name.into() }
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn inconsistent_schemas_are_refused() {
        let color = Column::Categorical { name: "c".into(), categories: strings(&["a", "a"]) };
        type Case = (Vec<Column>, &'static [&'static str], TargetKind, &'static [&'static str], &'static str);
        let cases: Vec<Case> = vec![
            (vec![], &["y"], TargetKind::Values, &[], "no feature columns"),
            (vec![numeric("a")], &[], TargetKind::Values, &[], "no target column"),
            (vec![numeric("a"), numeric("a")], &["y"], TargetKind::Values, &[], "`a` is used twice"),
            (vec![numeric("y")], &["y"], TargetKind::Values, &[], "`y` is used twice"),
            (vec![color], &["y"], TargetKind::Values, &[], "category `a` twice"),
            (vec![numeric("a")], &["y"], TargetKind::Classes, &["0"], "at least two"),
            (vec![numeric("a")], &["y"], TargetKind::Binary, &["0", "1", "2"], "exactly two"),
            (vec![numeric("a")], &["y", "z"], TargetKind::Classes, &["0", "1"], "one column, not 2"),
            (vec![numeric("a")], &["y", "z"], TargetKind::MultiLabel, &["y"], "must be its target"),
            (vec![numeric("a")], &["y"], TargetKind::Values, &["0"], "has no classes"),
        ];
        for (columns, target, kind, classes, want) in cases {
            let err = Schema::new(columns, strings(target), kind, strings(classes)).unwrap_err();
            assert!(err.contains(want), "expected `{want}` in `{err}`");
        }
    }

    #[test]
    fn one_hot_columns_name_their_features() {
        let columns =
            vec![numeric("x"), Column::Categorical { name: "c".into(), categories: strings(&["b", "a"]) }];
        let schema = Schema::new(columns, strings(&["y"]), TargetKind::Values, vec![]).unwrap();
        assert_eq!(schema.feature_names(), strings(&["x", "c=b", "c=a"]));
        assert_eq!((schema.width(), schema.outputs()), (3, 1));
    }

    #[test]
    fn deserializing_checks_the_invariants() {
        let good = r#"{"columns":[{"type":"numeric","name":"a"}],"target":["y"],
                       "target_kind":"binary","classes":["no","yes"]}"#;
        let schema: Schema = serde_json::from_str(good).unwrap();
        assert_eq!(schema.feature_names(), ["a"], "the derived names are rebuilt");
        let bad = good.replace(r#"["no","yes"]"#, r#"["no"]"#);
        let err = serde_json::from_str::<Schema>(&bad).unwrap_err().to_string();
        assert!(err.contains("invalid table schema") && err.contains("exactly two"), "{err}");
    }
}
